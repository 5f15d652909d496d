"""Render a run (rule render_frames): every filter's frame, frames.tsv, one contact sheet per layer
with the top filters marked, top_filters.tsv, and the browser preview."""

import logging
from pathlib import Path

import numpy as np

from filterlens.activations import Activations
from filterlens.describe import weights_text
from filterlens.jobs import run_job
from filterlens.normalize import read_scales
from filterlens.rendering import Outputs, render_run

log = logging.getLogger("filterlens")


def main(smk):
    acts = Activations(smk.input.maps)
    w, o = smk.wildcards, smk.output
    done = render_run(
        acts, read_scales(Path(smk.input.scales).parent), smk.params.settings,
        np.load(smk.input.palette), smk.params.top_k,
        Outputs(Path(o.frames), Path(o.index), Path(o.sheets), Path(o.top), Path(o.preview)),
        run=w.run, title=f"{w.model} · {w.image}", weights=weights_text(acts.weights, short=True),
        threads=smk.threads,
    )  # fmt: skip
    seconds = ", ".join(f"{part} {s:.2f} s" for part, s in done.seconds.items())
    log.info("%d frames of %d layers at %dx%d; processor time: %s", done.frames, done.layers,
             *acts.img_size, seconds)  # fmt: skip


run_job(main, snakemake)  # noqa: F821 - injected by Snakemake
