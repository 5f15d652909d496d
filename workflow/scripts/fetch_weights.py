"""Download torchvision's published checkpoint for a model once, verified (rule fetch_weights)."""

import logging
from pathlib import Path

from filterlens import weights
from filterlens.jobs import run_job

log = logging.getLogger("filterlens")


def main(smk):
    import torchvision  # noqa: PLC0415 - resolves the model's DEFAULT weights and their URL

    p = smk.params
    enum = torchvision.models.get_model_weights(smk.wildcards.model).DEFAULT
    filename = enum.url.rsplit("/", 1)[-1]
    log.info("model %s: imagenet weights are %s (%s)", smk.wildcards.model, enum, filename)
    # Refused here, before any download, when only a hash prefix is known and the config wants more.
    known = weights.read_checksums(smk.input.checksums)
    expected = weights.expected_for(filename, known, require_full=p.require_full_sha256)
    target = Path(smk.output.record).parent / filename
    limits = weights.Limits(deadline_s=p.deadline_s, max_bytes=p.max_bytes)
    source = weights.source_url(enum.url, p.mirror)
    digest = weights.fetch(source, target, expected, limits, weights.mirror_credentials(p.mirror))
    record = weights.WeightsRecord(digest, target, expected.verification, f"imagenet: {enum}")
    weights.write_record(Path(smk.output.record), record)


run_job(main, snakemake)  # noqa: F821 - injected by Snakemake
