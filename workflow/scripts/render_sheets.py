"""Draw one contact sheet per layer from a run's frames (rule render_sheets): every filter as a
labelled tile in frames.tsv order, the top filters marked, and the colorbar of the run's scale."""

import json
import logging
from pathlib import Path

import numpy as np
from PIL import Image

from filterlens import sheets
from filterlens.describe import weights_text
from filterlens.files import atomic_dir, read_tsv
from filterlens.jobs import run_job
from filterlens.topk import marks as top_marks

log = logging.getLogger("filterlens")


def main(smk):
    p = smk.params
    run_dir = Path(smk.input.index).parent
    maps = Path(smk.input.maps)
    info = json.loads((maps / "extraction.json").read_text())
    shapes = {row["layer"]: row for row in read_tsv(maps / "layers.tsv")}
    scales = {}
    for row in read_tsv(smk.input.scales):
        scales.setdefault(row["layer"], []).append((float(row["low"]), float(row["high"])))
    top = top_marks(read_tsv(smk.input.top))
    lut = sheets.GRAY if p.save_16bit else np.load(smk.input.palette)
    cdfs = np.load(smk.input.equalization) if p.hist_eq else None
    weights = weights_text(info["weights"], short=True)
    style = f"cmap {p.cmap}" if not p.save_16bit else "16-bit grayscale frames"
    if p.overlay:
        style += f", blended over the input (alpha {p.alpha:g})"

    with atomic_dir(smk.output.sheets) as out:
        for layer, frames in sheets.frames_by_layer(read_tsv(smk.input.index)).items():
            size = Image.open(run_dir / frames[0][1]).size
            grid = sheets.make_grid(len(frames), size)
            lows, highs = zip(*scales[layer])
            shape = shapes[layer]
            sheet = sheets.layer_sheet(
                run_dir, frames, grid,
                title=f"{smk.wildcards.model} · {smk.wildcards.image} · {layer}",
                lines=[
                    f"{len(frames)} filters of {shape['module']} ({shape['type']}), maps "
                    f"{shape['height']}x{shape['width']}, tiles {grid.tile[0]}x{grid.tile[1]} "
                    f"from {size[0]}x{size[1]} frames · {weights}",
                    f"run {smk.wildcards.run}: normalization {p.mode}, {style}",
                ],
                scale=sheets.scale_for(
                    p.mode, layer, lows, highs, lut, p.clip, None if cdfs is None else cdfs[layer]
                ),
                top=top.get(layer, {}),
                top_k=p.top_k,
            )  # fmt: skip
            (out / f"{layer}.png").write_bytes(sheets.sheet_png(sheet.image))
            log.info("%s: %d tiles of %dx%d in %d columns", layer, len(frames), *grid.tile,
                     grid.columns)  # fmt: skip


run_job(main, snakemake)  # noqa: F821 - injected by Snakemake
