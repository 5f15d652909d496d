# Extraction runs in batches: one job loads the model once and runs every image of its batch that
# needs extraction (filterlens.batches). The batches are known at start-up, so each is a rule of
# its own, with the activations folders of its images as outputs; images whose activations are
# current are in no batch, and their folders are inputs of the later steps like any source file.
for batch, key in BATCHES:

    rule:
        name:
            batch.rule
        input:
            images=list(batch_images(batch).values()),
            weights=weights_input(batch.model),
        output:
            maps=batch_outputs(batch, "maps"),
            tables=batch_outputs(batch, "table"),
            plots=batch_outputs(batch, "plot"),
        log:
            f"logs/extract_activations/{batch.model}/batch-{batch.name}.log",
        benchmark:
            f"benchmarks/extract_activations/{batch.model}/batch-{batch.name}.tsv"
        conda:
            "../../envs/filterlens.yaml"
        threads: 2
        resources:
            mem_mb=extract_mem_mb,
            gpu=extract_gpus,
            runtime=60,
        params:
            images=batch_images(batch),
            settings=extraction_settings(batch.model),
            key=key,
            max_image_pixels=config["max_image_pixels"],
            weights_max_bytes=config["weights_max_bytes"],
            code=script_code("extract_activations"),
        script:
            "../scripts/extract_activations.py"
