rule make_palette:
    output:
        palette="resources/palettes/{cmap}.npy",
    log:
        "logs/make_palette/{cmap}.log",
    benchmark:
        "benchmarks/make_palette/{cmap}.tsv"
    conda:
        "../../envs/filterlens.yaml"
    params:
        code=script_code("make_palette"),
    script:
        "../scripts/make_palette.py"


# One job renders a whole run: frames on the job's threads, each frame also made into its tile of
# the layer's contact sheet while it is in memory; the top filters, marked on the sheets, and the
# browser preview, made from the sheets.
rule render_frames:
    input:
        unpack(scales_of_run),
        maps=ACTIVATIONS,
        palette=palette_file,
    output:
        frames=directory(f"{RUN_DIR}/frames"),
        index=f"{RUN_DIR}/frames.tsv",
        sheets=report(
            directory(f"{RUN_DIR}/sheets"),
            patterns=["{layer}.png"],
            caption="../report/sheet.rst",
            category="{model} · {image}",
            subcategory="2. Contact sheets, run {run}",
            labels={"layer": "{layer}"},
        ),
        top=report(
            f"{RUN_DIR}/top_filters.tsv",
            caption="../report/top_filters.rst",
            category="{model} · {image}",
            subcategory="3. Top filters",
            labels={"run": "{run}"},
        ),
        preview=f"{RUN_DIR}/preview.webp",
    log:
        "logs/render_frames/{model}/{image}/{run}.log",
    benchmark:
        "benchmarks/render_frames/{model}/{image}/{run}.tsv"
    group:
        "render"
    conda:
        "../../envs/filterlens.yaml"
    threads: 2
    resources:
        mem_mb=render_mem_mb,
        runtime=60,
    params:
        settings=render_settings,
        top_k=config["top_k"],
        weights=WEIGHTS_NOTE,
        code=script_code("render_frames"),
    script:
        "../scripts/render_frames.py"
