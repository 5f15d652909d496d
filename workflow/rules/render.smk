rule make_palette:
    output:
        palette="resources/palettes/{cmap}.npy",
    log:
        "logs/make_palette/{cmap}.log",
    conda:
        "../../envs/filterlens.yaml"
    params:
        code=script_code("make_palette"),
    script:
        "../scripts/make_palette.py"


rule render_frames:
    input:
        maps=ACTIVATIONS,
        scales=f"{RUN_DIR}/scales.tsv",
        equalization=f"{RUN_DIR}/equalization.npz",
        palette=palette_file,
    output:
        frames=directory(f"{RUN_DIR}/frames/{{layer}}"),
    log:
        "logs/render_frames/{model}/{image}/{run}/{layer}.log",
    benchmark:
        "benchmarks/render_frames/{model}/{image}/{run}/{layer}.tsv"
    group:
        "render"
    conda:
        "../../envs/filterlens.yaml"
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        img_size=IMG_SIZE,
        resample=run_setting("resample"),
        hist_eq=run_setting("use_hist_eq"),
        save_16bit=run_setting("save_16bit"),
        overlay=run_setting("overlay_on_image"),
        alpha=run_setting("overlay_alpha"),
        legend=run_setting("show_legend"),
        code=script_code("render_frames"),
    script:
        "../scripts/render_frames.py"


rule index_frames:
    input:
        frames=frame_dirs,
    output:
        index=f"{RUN_DIR}/frames.tsv",
    log:
        "logs/index_frames/{model}/{image}/{run}.log",
    conda:
        "../../envs/filterlens.yaml"
    params:
        code=script_code("index_frames"),
    script:
        "../scripts/index_frames.py"
