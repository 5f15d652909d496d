"""Per-filter min, max, mean and std of the raw activations (rule aggregate_stats), as a readable
text file and a TSV table; printed to the log when show_raw_stats is set."""

import logging

from filterlens.activations import load_maps
from filterlens.files import write_text, write_tsv
from filterlens.jobs import run_job
from filterlens.stats import COLUMNS, filter_stats, format_text

log = logging.getLogger("filterlens")


def main(smk):
    rows = [row for layer, a in load_maps(smk.input.maps).items() for row in filter_stats(layer, a)]
    text = format_text(rows)
    write_tsv(smk.output.table, COLUMNS, rows)
    write_text(smk.output.text, text)
    if smk.params.show:
        log.info("raw activation statistics:\n%s", text)
    log.info("statistics of %d filters", len(rows))


run_job(main, snakemake)  # noqa: F821 - injected by Snakemake
