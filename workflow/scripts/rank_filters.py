"""Rank each layer's filters by mean and by max activation and keep the top k (rule
rank_filters), from the per-filter statistics table."""

import logging

from filterlens.files import read_tsv, write_tsv
from filterlens.jobs import run_job
from filterlens.topk import COLUMNS, top_filters

log = logging.getLogger("filterlens")


def main(smk):
    rows = top_filters(read_tsv(smk.input.stats), smk.params.top_k)
    write_tsv(smk.output.table, COLUMNS, rows)
    log.info("top %d filters by mean and by max: %d rows", smk.params.top_k, len(rows))


run_job(main, snakemake)  # noqa: F821 - injected by Snakemake
