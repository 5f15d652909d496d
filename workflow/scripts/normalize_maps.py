"""Compute every filter's scale for a run (rules normalize_maps, equalize_maps): [low, high] per
filter after optional percentile clipping over the normalization scope, and with histogram
equalization the scope's curves."""

import logging
from pathlib import Path

from filterlens.activations import Activations
from filterlens.jobs import run_job
from filterlens.normalize import compute_scales, write_scales

log = logging.getLogger("filterlens")


def main(smk):
    s = smk.params.settings
    maps = Activations(smk.input.maps).maps()
    scales = compute_scales(maps, s["normalization_mode"], s["clip_percentiles"], s["use_hist_eq"])
    write_scales(Path(smk.output.scales).parent, scales)
    log.info("mode %s, clip %s, hist-eq %s: scales for %d layers", scales.mode, scales.clip,
             scales.hist_eq, len(maps))  # fmt: skip


run_job(main, snakemake)  # noqa: F821 - injected by Snakemake
