"""Write the HTML page of one model and image (rule write_page): the input and its predictions,
per-layer statistics and, per run, the preview, the top filters and the contact sheets."""

import logging
from pathlib import Path

from filterlens.activations import Activations
from filterlens.finish import runs_of, write_page
from filterlens.jobs import run_job

log = logging.getLogger("filterlens")


def main(smk):
    w = smk.wildcards
    runs = runs_of(w.model, w.image, smk.params.runs)
    write_page(Activations(smk.input.maps), runs, w.model, w.image, Path(smk.input.table),
               Path(smk.input.plot), Path(smk.output.page))  # fmt: skip
    log.info("page of %d runs", len(runs))


run_job(main, snakemake)  # noqa: F821 - injected by Snakemake
