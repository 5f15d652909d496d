# The last, cheap steps of an image: for all its runs at once, each run's lossless video (a stream
# copy of its PNG frames), statistics files, MANIFEST.sha256 and provenance.json; then its page.
rule finish_image:
    input:
        maps=ACTIVATIONS,
        index=run_files("frames.tsv"),
        frames=run_files("frames"),
    output:
        videos=video_outputs(),
        stats=run_outputs("activation_stats.tsv"),
        text=run_outputs("activation_stats.txt"),
        manifests=run_outputs("MANIFEST.sha256"),
        provenance=run_outputs("provenance.json"),
    log:
        "logs/finish_image/{model}/{image}.log",
    benchmark:
        "benchmarks/finish_image/{model}/{image}.tsv"
    group:
        "render"
    conda:
        "../../envs/filterlens.yaml"
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        runs=RUNS,
        config=config_for_provenance,
        weights=WEIGHTS_NOTE,
        code=script_code("finish_image"),
    script:
        "../scripts/finish_image.py"


# The page of a model and image: the input and its predictions, the per-layer statistics and, per
# run, the preview, the top filters and the contact sheets. A rule of its own, so that two
# invocations with different runs of one image can each finish their own runs side by side.
rule write_page:
    input:
        maps=ACTIVATIONS,
        table=f"{IMAGE_DIR}/layer_stats.tsv",
        plot=f"{IMAGE_DIR}/layer_stats.png",
        manifests=run_files("MANIFEST.sha256"),
        sheets=run_files("sheets"),
        top=run_files("top_filters.tsv"),
        preview=run_files("preview.webp"),
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
    benchmark:
        "benchmarks/write_page/{model}/{image}.tsv"
    group:
        "render"
    conda:
        "../../envs/filterlens.yaml"
    resources:
        mem_mb=1000,
        runtime=20,
    params:
        runs=RUNS,
        weights=WEIGHTS_NOTE,
        code=script_code("write_page"),
    script:
        "../scripts/write_page.py"
