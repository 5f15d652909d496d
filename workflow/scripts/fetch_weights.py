"""Download torchvision's published checkpoint for a model once, verified (rule fetch_weights)."""

import logging
from pathlib import Path

from filterlens.jobs import run_job
from filterlens.weights import expected_hash, fetch, known_hashes, source_url, write_record

log = logging.getLogger("filterlens")


def main(smk):
    import torchvision  # noqa: PLC0415 - resolves the model's DEFAULT weights and their URL

    enum = torchvision.models.get_model_weights(smk.wildcards.model).DEFAULT
    filename = enum.url.rsplit("/", 1)[-1]
    log.info("model %s: imagenet weights are %s (%s)", smk.wildcards.model, enum, filename)
    expected = expected_hash(filename, known_hashes(smk.input.checksums))
    target = Path(smk.output.record).parent / filename
    digest = fetch(source_url(enum.url, smk.params.mirror), target, expected)
    write_record(Path(smk.output.record), digest, filename)


run_job(main, snakemake)  # noqa: F821 - injected by Snakemake
