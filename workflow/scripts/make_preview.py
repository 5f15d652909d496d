"""Make a run's browser preview (rule make_preview): all frames, in frames.tsv order and at the
video's rate, as a small animated WebP."""

import logging
from pathlib import Path

from PIL import Image

from filterlens import preview
from filterlens.files import read_tsv, write_bytes
from filterlens.jobs import run_job

log = logging.getLogger("filterlens")


def main(smk):
    run_dir = Path(smk.input.index).parent
    rows = read_tsv(smk.input.index)
    size = preview.preview_size(Image.open(run_dir / rows[0]["path"]).size, len(rows))
    stills = (
        preview.still_webp(
            preview.preview_frame(Image.open(run_dir / r["path"]), size, r["layer"], r["filter"])
        )
        for r in rows
    )
    duration = max(1, round(1000 / smk.params.fps))
    framed = (size[0], size[1] + preview.BAND)
    write_bytes(smk.output.preview, preview.animated_webp(stills, framed, duration))
    log.info("%d frames of %dx%d, %d ms each", len(rows), *framed, duration)


run_job(main, snakemake)  # noqa: F821 - injected by Snakemake
