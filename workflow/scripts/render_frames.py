"""Render every filter of one layer to a PNG frame (rule render_frames)."""

import logging
from pathlib import Path

import numpy as np
from PIL import Image

from filterlens import render
from filterlens.activations import load_map
from filterlens.files import atomic_dir, read_tsv
from filterlens.jobs import run_job
from filterlens.normalize import equalize, to_unit

log = logging.getLogger("filterlens")


def main(smk):
    p = smk.params
    layer = smk.wildcards.layer
    maps = load_map(smk.input.maps, layer)
    scale = [row for row in read_tsv(smk.input.scales) if row["layer"] == layer]
    low = np.array([float(r["low"]) for r in scale])
    high = np.array([float(r["high"]) for r in scale])
    cdf = np.load(smk.input.equalization)[layer] if p.hist_eq else None
    lut = np.load(smk.input.palette)
    background = None
    if p.overlay:
        background = Image.open(Path(smk.input.maps) / "input.png").convert("RGB")
    size = tuple(p.img_size)
    levels = 65536 if p.save_16bit else 256
    suffix = "_16bit.png" if p.save_16bit else ".png"

    with atomic_dir(smk.output.frames) as out:
        for f in range(maps.shape[0]):
            unit = to_unit(maps[f], low[f], high[f])
            if cdf is not None:
                unit = equalize(unit, cdf[f if cdf.shape[0] > 1 else 0])
            index = render.levels_at_size(unit, size, p.resample, levels)
            if p.save_16bit:
                image = render.gray16_image(index)
            elif p.overlay or p.legend:
                legend = f"{layer} #{f}" if p.legend else None
                image = render.rgb_frame(index, lut, background, p.alpha, legend)
            else:
                image = render.palette_image(index, lut)
            (out / f"{f:04d}{suffix}").write_bytes(render.png_bytes(image))
    log.info("%s: %d frames at %dx%d", layer, maps.shape[0], *size)


run_job(main, snakemake)  # noqa: F821 - injected by Snakemake
