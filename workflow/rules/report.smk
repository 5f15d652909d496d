# The report: per-layer statistics, top filters, contact sheets, previews, one HTML page per model
# and image, and comparisons. `snakemake --report report.zip` gathers what these rules mark.


localrules:
    rank_filters,
    write_page,


rule summarize_layers:
    input:
        maps=ACTIVATIONS,
    output:
        table=report(
            f"{SUMMARY_DIR}/layer_stats.tsv",
            caption="../report/layer_table.rst",
            category="{model} · {image}",
            subcategory="4. Layer statistics",
            labels={"file": "table (TSV)"},
        ),
    log:
        "logs/summarize_layers/{model}/{image}.log",
    conda:
        "../../envs/filterlens.yaml"
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        weights=WEIGHTS_NOTE,
        code=script_code("summarize_layers"),
    script:
        "../scripts/summarize_layers.py"


rule plot_layer_stats:
    input:
        table=f"{SUMMARY_DIR}/layer_stats.tsv",
        maps=ACTIVATIONS,
    output:
        plot=report(
            f"{SUMMARY_DIR}/layer_stats.png",
            caption="../report/layer_plot.rst",
            category="{model} · {image}",
            subcategory="4. Layer statistics",
            labels={"file": "plot"},
        ),
    log:
        "logs/plot_layer_stats/{model}/{image}.log",
    conda:
        "../../envs/filterlens.yaml"
    params:
        weights=WEIGHTS_NOTE,
        code=script_code("plot_layer_stats"),
    script:
        "../scripts/plot_layer_stats.py"


rule rank_filters:
    input:
        stats=f"{RUN_DIR}/activation_stats.tsv",
    output:
        table=report(
            f"{RUN_DIR}/top_filters.tsv",
            caption="../report/top_filters.rst",
            category="{model} · {image}",
            subcategory="3. Top filters",
            labels={"run": "{run}"},
        ),
    log:
        "logs/rank_filters/{model}/{image}/{run}.log",
    conda:
        "../../envs/filterlens.yaml"
    params:
        top_k=config["top_k"],
        weights=WEIGHTS_NOTE,
        code=script_code("rank_filters"),
    script:
        "../scripts/rank_filters.py"


rule render_sheets:
    input:
        index=f"{RUN_DIR}/frames.tsv",
        maps=ACTIVATIONS,
        scales=f"{RUN_DIR}/scales.tsv",
        equalization=f"{RUN_DIR}/equalization.npz",
        palette=palette_file,
        top=f"{RUN_DIR}/top_filters.tsv",
    output:
        sheets=report(
            directory(f"{RUN_DIR}/sheets"),
            patterns=["{layer}.png"],
            caption="../report/sheet.rst",
            category="{model} · {image}",
            subcategory="2. Contact sheets, run {run}",
            labels={"layer": "{layer}"},
        ),
    log:
        "logs/render_sheets/{model}/{image}/{run}.log",
    benchmark:
        "benchmarks/render_sheets/{model}/{image}/{run}.tsv"
    conda:
        "../../envs/filterlens.yaml"
    resources:
        mem_mb=1000,
        runtime=20,
    params:
        mode=run_setting("normalization_mode"),
        clip=run_setting("clip_percentiles"),
        hist_eq=run_setting("use_hist_eq"),
        cmap=run_setting("cmap"),
        save_16bit=run_setting("save_16bit"),
        overlay=run_setting("overlay_on_image"),
        alpha=run_setting("overlay_alpha"),
        top_k=config["top_k"],
        weights=WEIGHTS_NOTE,
        code=script_code("render_sheets"),
    script:
        "../scripts/render_sheets.py"


rule make_preview:
    input:
        index=f"{RUN_DIR}/frames.tsv",
    output:
        preview=f"{RUN_DIR}/preview.webp",
    log:
        "logs/make_preview/{model}/{image}/{run}.log",
    benchmark:
        "benchmarks/make_preview/{model}/{image}/{run}.tsv"
    conda:
        "../../envs/filterlens.yaml"
    resources:
        mem_mb=500,
        runtime=30,
    params:
        fps=run_setting("fps"),
        code=script_code("make_preview"),
    script:
        "../scripts/make_preview.py"


rule write_page:
    input:
        maps=ACTIVATIONS,
        stats=f"{SUMMARY_DIR}/layer_stats.tsv",
        plot=f"{SUMMARY_DIR}/layer_stats.png",
        index=run_files("frames.tsv"),
        sheets=run_files("sheets"),
        top=run_files("top_filters.tsv"),
        preview=run_files("preview.webp"),
        videos=report_videos,
    output:
        page=report(
            directory(PAGE_DIR),
            htmlindex="index.html",
            caption="../report/page.rst",
            category="{model} · {image}",
            subcategory="1. Overview",
            labels={"model": "{model}", "image": "{image}"},
        ),
    log:
        "logs/write_page/{model}/{image}.log",
    conda:
        "../../envs/filterlens.yaml"
    params:
        runs=list(RUNS),
        settings=RUNS,
        weights=WEIGHTS_NOTE,
        code=script_code("write_page"),
    script:
        "../scripts/write_page.py"


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
