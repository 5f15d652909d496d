rule fetch_weights:
    input:
        checksums=checksums_file(),
    output:
        record="resources/weights/{model}.imagenet.sha256",
    log:
        "logs/fetch_weights/{model}.log",
    conda:
        "../../envs/filterlens.yaml"
    params:
        mirror=config["weights_mirror"],
        code=script_code("fetch_weights"),
    script:
        "../scripts/fetch_weights.py"
