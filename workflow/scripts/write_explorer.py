"""Write the explorer page of a set (rule write_explorer): one static page that shows a chosen
filter on every image of the set on one scale, its top images, and the value under the pointer."""

import logging

import numpy as np

from filterlens.activations import Activations
from filterlens.describe import weights_text
from filterlens.explorer import write_explorer
from filterlens.files import read_tsv
from filterlens.jobs import run_job

log = logging.getLogger("filterlens")


def main(smk):
    p = smk.params
    images = list(zip(p.members, smk.input.maps))
    weights = weights_text(Activations(smk.input.maps[0]).weights, short=True)
    done = write_explorer(smk.output.explorer, smk.wildcards.set, images, read_tsv(smk.input.top),
                          np.load(smk.input.palette), weights, f"cmap {p.cmap}, nearest upsampling",
                          cap=p.cap)  # fmt: skip
    log.info("explorer: %d files, %.1f MB; first view %.1f MB; %d images held, %d listed",
             done.files, done.bytes / 1e6, done.first_view_bytes / 1e6, done.held, done.listed)


run_job(main, snakemake)  # noqa: F821 - injected by Snakemake
