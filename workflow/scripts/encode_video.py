"""Stream-copy a run's PNG frames, in frames.tsv order, into a lossless AVI (rule encode_video)."""

import logging
from pathlib import Path

from filterlens.files import read_tsv
from filterlens.jobs import run_job
from filterlens.video import encode_avi

log = logging.getLogger("filterlens")


def main(smk):
    run_dir = Path(smk.input.index).parent
    frames = [run_dir / row["path"] for row in read_tsv(smk.input.index)]
    count = encode_avi(frames, Path(smk.output.video), smk.params.fps)
    log.info("%d frames at %s fps -> %s", count, smk.params.fps, smk.output.video)


run_job(main, snakemake)  # noqa: F821 - injected by Snakemake
