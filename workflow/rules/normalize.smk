# Each filter's scale, per run. Runs with histogram equalization also keep the curves
# (equalization.npz): the same step under a second name, chosen by the run.
rule normalize_maps:
    input:
        maps=ACTIVATIONS,
    output:
        scales=f"{RUN_DIR}/scales.tsv",
    log:
        "logs/normalize_maps/{model}/{image}/{run}.log",
    benchmark:
        "benchmarks/normalize_maps/{model}/{image}/{run}.tsv"
    wildcard_constraints:
        run=runs_where_not("use_hist_eq"),
    group:
        "render"
    conda:
        "../../envs/filterlens.yaml"
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        settings=normalization_settings,
        code=script_code("normalize_maps"),
    script:
        "../scripts/normalize_maps.py"


use rule normalize_maps as equalize_maps with:
    output:
        scales=f"{RUN_DIR}/scales.tsv",
        equalization=f"{RUN_DIR}/equalization.npz",
    log:
        "logs/equalize_maps/{model}/{image}/{run}.log",
    benchmark:
        "benchmarks/equalize_maps/{model}/{image}/{run}.tsv"
    wildcard_constraints:
        run=runs_where("use_hist_eq"),
