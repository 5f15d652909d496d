rule aggregate_stats:
    input:
        maps=ACTIVATIONS,
    output:
        text=f"{RUN_DIR}/activation_stats.txt",
        table=f"{RUN_DIR}/activation_stats.tsv",
    log:
        "logs/aggregate_stats/{model}/{image}/{run}.log",
    conda:
        "../../envs/filterlens.yaml"
    resources:
        mem_mb=1000,
        runtime=20,
    params:
        show=run_setting("show_raw_stats"),
        code=script_code("aggregate_stats"),
    script:
        "../scripts/aggregate_stats.py"
