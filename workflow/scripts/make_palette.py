"""Sample a matplotlib colormap at 256 levels once (rule make_palette), so that rendering jobs
need not import matplotlib."""

import numpy as np

from filterlens.files import atomic_path
from filterlens.jobs import run_job
from filterlens.render import palette


def main(smk):
    with atomic_path(smk.output.palette) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, palette(smk.wildcards.cmap))


run_job(main, snakemake)  # noqa: F821 - injected by Snakemake
