"""Finish one model and image (rule finish_image): per run the lossless video, the statistics
files, MANIFEST.sha256 and provenance.json."""

import logging

from filterlens.activations import Activations
from filterlens.finish import finish_run, runs_of
from filterlens.jobs import run_job

log = logging.getLogger("filterlens")


def main(smk):
    w = smk.wildcards
    acts = Activations(smk.input.maps)
    for run in runs_of(w.model, w.image, smk.params.runs):
        finish_run(acts, run, w.model, w.image, smk.params.config)
    log.info("finished %d runs", len(smk.params.runs))


run_job(main, snakemake)  # noqa: F821 - injected by Snakemake
