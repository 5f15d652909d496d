"""Rank the images of a set for every filter (rule rank_set): members.tsv, top_images.tsv (top
images by mean and by max, with where the maximum is and what its unit sees) and
filter_means.tsv (every filter's mean on every image)."""

import logging
from pathlib import Path

from filterlens.imagesets import rank
from filterlens.jobs import run_job

log = logging.getLogger("filterlens")


def main(smk):
    members = dict(zip(smk.params.members, smk.input.maps))
    rows = rank(members, smk.input.fields, smk.params.top_images, Path(smk.output.members).parent)
    log.info("set %s: %d images, %d rows of top images", smk.wildcards.set, len(members), rows)


run_job(main, snakemake)  # noqa: F821 - injected by Snakemake
