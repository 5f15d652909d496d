"""Compute every filter's scale for a run (rule normalize_maps): [low, high] per filter after
optional percentile clipping over the normalization scope, and the equalization curves."""

import logging

import numpy as np

from filterlens.activations import load_maps
from filterlens.files import atomic_path, write_tsv
from filterlens.jobs import run_job
from filterlens.normalize import compute_scales

log = logging.getLogger("filterlens")


def main(smk):
    p = smk.params
    maps = load_maps(smk.input.maps)
    scales = compute_scales(maps, p.mode, p.clip, p.hist_eq)
    write_tsv(smk.output.scales, ("layer", "filter", "low", "high"), scales.rows())
    with atomic_path(smk.output.equalization) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **scales.cdf)
    log.info(
        "mode %s, clip %s, hist-eq %s: scales for %d layers", p.mode, p.clip, p.hist_eq, len(maps)
    )


run_job(main, snakemake)  # noqa: F821 - injected by Snakemake
