"""Summarize each layer's raw activations (rule summarize_layers): shape, mean, std, min, max
and the fraction of values <= 0, one row per layer in network order."""

import logging

from filterlens.activations import load_maps
from filterlens.files import write_tsv
from filterlens.jobs import run_job
from filterlens.summary import COLUMNS, layer_summary

log = logging.getLogger("filterlens")


def main(smk):
    rows = [layer_summary(layer, a) for layer, a in load_maps(smk.input.maps).items()]
    write_tsv(smk.output.table, COLUMNS, rows)
    log.info("summary of %d layers", len(rows))


run_job(main, snakemake)  # noqa: F821 - injected by Snakemake
