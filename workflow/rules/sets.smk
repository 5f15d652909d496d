# What each filter responds to across a set of images (config key image_sets): the receptive
# fields of the model's layers, the top images of every filter, the pictures, and the explorer.
rule measure_fields:
    input:
        weights=model_weights,
    output:
        fields=imagesets.FIELDS,
    log:
        "logs/measure_fields/{model}.log",
    benchmark:
        "benchmarks/measure_fields/{model}.tsv"
    conda:
        "../../envs/filterlens.yaml"
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        settings=field_settings,
        code=script_code("measure_fields"),
    script:
        "../scripts/measure_fields.py"


rule rank_set:
    input:
        maps=set_activations,
        fields=imagesets.FIELDS,
    output:
        members=f"{imagesets.SET_DIR}/members.tsv",
        top=f"{imagesets.SET_DIR}/top_images.tsv",
        means=f"{imagesets.SET_DIR}/filter_means.tsv",
    log:
        "logs/rank_set/{model}/_sets/{set}.log",
    benchmark:
        "benchmarks/rank_set/{model}/_sets/{set}.tsv"
    conda:
        "../../envs/filterlens.yaml"
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        members=set_members,
        top_images=config["top_images"],
        code=script_code("rank_set"),
    script:
        "../scripts/rank_set.py"


rule draw_set:
    input:
        maps=set_activations,
        fields=imagesets.FIELDS,
        members=f"{imagesets.SET_DIR}/members.tsv",
        top=f"{imagesets.SET_DIR}/top_images.tsv",
        means=f"{imagesets.SET_DIR}/filter_means.tsv",
        palette=f"resources/palettes/{config['cmap']}.npy",
    output:
        examples=report(
            directory(f"{imagesets.SET_DIR}/examples"),
            patterns=["{layer}.png"],
            caption="../report/examples.rst",
            category="Image set {set}",
            subcategory="{model}: dataset examples",
            labels={"layer": "{layer}"},
        ),
        maps=report(
            directory(f"{imagesets.SET_DIR}/filter_map"),
            patterns=["{layer}.png"],
            caption="../report/filter_map.rst",
            category="Image set {set}",
            subcategory="{model}: filter x image maps",
            labels={"layer": "{layer}"},
        ),
        manifest=f"{imagesets.SET_DIR}/MANIFEST.sha256",
        provenance=f"{imagesets.SET_DIR}/provenance.json",
    log:
        "logs/draw_set/{model}/_sets/{set}.log",
    benchmark:
        "benchmarks/draw_set/{model}/_sets/{set}.tsv"
    conda:
        "../../envs/filterlens.yaml"
    threads: 2
    resources:
        mem_mb=3000,
        runtime=60,
    params:
        top_images=config["top_images"],
        config=set_config,
        settings={"cmap": config["cmap"]},
        weights=WEIGHTS_NOTE,
        code=script_code("draw_set"),
    script:
        "../scripts/draw_set.py"


rule write_explorer:
    input:
        maps=set_activations,
        top=f"{imagesets.SET_DIR}/top_images.tsv",
        palette=f"resources/palettes/{config['cmap']}.npy",
    output:
        explorer=report(
            directory(f"{imagesets.SET_DIR}/explorer"),
            htmlindex="index.html",
            caption="../report/explorer.rst",
            category="Image set {set}",
            subcategory="{model}: explorer",
            labels={"model": "{model}", "set": "{set}"},
        ),
    log:
        "logs/write_explorer/{model}/_sets/{set}.log",
    benchmark:
        "benchmarks/write_explorer/{model}/_sets/{set}.tsv"
    conda:
        "../../envs/filterlens.yaml"
    resources:
        mem_mb=3000,
        runtime=60,
    params:
        members=set_members,
        cap=config["explorer_max_images"],
        cmap=config["cmap"],
        weights=WEIGHTS_NOTE,
        code=script_code("write_explorer"),
    script:
        "../scripts/write_explorer.py"
