"""Extract a batch of images through one loaded model (rules extract_activations_*): for each
image its activations folder, per-layer statistics and their plot, one image after the other."""

import logging

from filterlens import images
from filterlens.jobs import run_job

log = logging.getLogger("filterlens")


def main(smk):
    p = smk.params
    # Every image is decoded before any model work: a bad file fails in a second, not after torch.
    images.check_loads(p.images, p.max_image_pixels)

    from filterlens.extraction import Extractor  # noqa: PLC0415 - imports torch

    weights = smk.input.weights[0] if smk.input.weights else None
    extractor = Extractor.load(p.settings, weights, p.weights_max_bytes, smk.threads)
    outputs = zip(p.images.items(), smk.output.maps, smk.output.tables, smk.output.plots)
    for (name, source), folder, table, plot in outputs:
        extractor.extract(name, source, p.key, p.max_image_pixels, folder, table, plot)
    log.info("extracted %d images", len(p.images))


run_job(main, snakemake)  # noqa: F821 - injected by Snakemake
