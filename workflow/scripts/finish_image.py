"""Finish one model and image (rule finish_image): per run the lossless video, the statistics
files, MANIFEST.sha256 and provenance.json; then the HTML page of all its runs."""

import logging
from pathlib import Path

from filterlens import paths
from filterlens.activations import Activations
from filterlens.finish import Run, finish_run, write_page
from filterlens.jobs import run_job

log = logging.getLogger("filterlens")


def main(smk):
    w, p = smk.wildcards, smk.params
    acts = Activations(smk.input.maps)
    runs = [Run(name, Path(paths.run_dir(w.model, w.image, name)), settings)
            for name, settings in p.runs.items()]  # fmt: skip
    for run in runs:
        finish_run(acts, run, w.model, w.image, p.config)
    write_page(acts, runs, w.model, w.image, Path(smk.input.table), Path(smk.input.plot),
               Path(smk.output.page))  # fmt: skip
    log.info("finished %d runs and the page", len(runs))


run_job(main, snakemake)  # noqa: F821 - injected by Snakemake
