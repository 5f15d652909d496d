checkpoint extract_activations:
    input:
        image=image_file,
        weights=weights_input,
    output:
        maps=directory(ACTIVATIONS),
    log:
        "logs/extract_activations/{model}/{image}.log",
    benchmark:
        "benchmarks/extract_activations/{model}/{image}.tsv"
    conda:
        "../../envs/filterlens.yaml"
    threads: 2
    resources:
        mem_mb=extract_mem_mb,
        gpu=extract_gpus,
        runtime=30,
    params:
        weights=config["weights"],
        seed=config["seed"],
        device=config["device"],
        layers=cfg.layer_patterns(config),
        max_filters=config["max_filters_per_layer"],
        img_size=IMG_SIZE,
        max_image_pixels=config["max_image_pixels"],
        code=script_code("extract_activations"),
    script:
        "../scripts/extract_activations.py"
