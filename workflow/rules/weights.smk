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
        require_full_sha256=config["require_full_sha256"],
        deadline_s=config["weights_download_deadline_s"],
        max_bytes=config["weights_max_bytes"],
        code=script_code("fetch_weights"),
    script:
        "../scripts/fetch_weights.py"
