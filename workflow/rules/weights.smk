rule fetch_weights:
    input:
        checksums=workflow.source_path("../checksums/weights.sha256"),
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
