rule fetch_weights:
    input:
        checksums=checksums_file(),
    output:
        record="resources/weights/{model}.imagenet.sha256",
    params:
        mirror=config["weights_mirror"],
        code=script_code("fetch_weights"),
    log:
        "logs/fetch_weights/{model}.log",
    conda:
        "../../envs/filterlens.yaml"
    script:
        "../scripts/fetch_weights.py"
