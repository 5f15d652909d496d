# Comparisons. The rest of the report (`snakemake --report report.zip`) is what the steps mark:
# the page and videos (finish_image), the contact sheets and top filters (render_frames).


rule compare_activations:
    input:
        a=compare_folder("a"),
        b=compare_folder("b"),
        palette=f"resources/palettes/{config['cmap']}.npy",
        diverging="resources/palettes/RdBu_r.npy",
    output:
        folder=report(
            directory("results/compare/{name}"),
            patterns=["{layer}.png"],
            caption="../report/compare.rst",
            category="Compare",
            subcategory="{name}",
            labels={"layer": "{layer}"},
        ),
    log:
        "logs/compare_activations/{name}.log",
    wildcard_constraints:
        name=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    conda:
        "../../envs/filterlens.yaml"
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        pair=compare_pair,
        weights=WEIGHTS_NOTE,
        code=script_code("compare_activations"),
    script:
        "../scripts/compare_activations.py"
