"""The filter x image map of a set: every filter's mean activation on every image, as a table
(filter_means.tsv) and one heatmap per layer (filters down, images across, one color scale per
layer with its values on a colorbar).

The table is long (layer, filter, image, mean: one row per filter and image) rather than one
column per image: its columns stay the same for every set, image names never become column names
(a name like `layer` would collide), and it reads straight into a data frame. Pillow only; the
colors come from the palette the workflow samples once (`render.palette`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image, ImageDraw

from . import sheets
from .files import read_tsv, write_tsv
from .render import quantize
from .topimages import ImageSet

FILENAME = "filter_means.tsv"
COLUMNS = ("layer", "filter", "image", "mean")
MAP_WIDTH = 1200  # the heatmap's target width: columns of 12 to 40 px
MAP_HEIGHT = 1024  # its target height: rows of 2 to 16 px
NAME_CHARS = 28


def mean_rows(image_set: ImageSet) -> Iterable[tuple]:
    """The rows of filter_means.tsv: per layer (network order), filter, image (set order)."""
    for row in image_set.layers:
        means = image_set.values(row["layer"], "mean")  # N x C
        for f in range(means.shape[1]):
            for i, image in enumerate(image_set.images):
                yield row["layer"], f, image, float(means[i, f])


def write_table(path: str | Path, rows: Iterable[Sequence]) -> None:
    write_tsv(path, COLUMNS, rows)


def read_table(path: str | Path) -> dict[str, tuple[list[str], np.ndarray]]:
    """layer -> (images in table order, C x N means)."""
    cells: dict[str, dict[tuple[int, str], float]] = {}
    images: dict[str, list[str]] = {}
    for row in read_tsv(path):
        layer = row["layer"]
        cells.setdefault(layer, {})[int(row["filter"]), row["image"]] = float(row["mean"])
        names = images.setdefault(layer, [])
        if row["image"] not in names:
            names.append(row["image"])
    maps = {}
    for layer, values in cells.items():
        count = 1 + max(f for f, _ in values)
        grid = np.full((count, len(images[layer])), np.nan)
        for (f, image), v in values.items():
            grid[f, images[layer].index(image)] = v
        maps[layer] = (images[layer], grid)
    return maps


def cell_size(filters: int, images: int) -> tuple[int, int]:
    """(width, height) of one cell: names stay readable across, 512 filters fit down."""
    width = min(40, max(12, MAP_WIDTH // max(1, images)))
    height = min(16, max(2, MAP_HEIGHT // max(1, filters)))
    return width, height


@dataclass
class FilterMap:
    """A drawn filter x image map and where its cells lie."""

    image: Image.Image
    at: tuple[int, int]  # top-left corner of the heatmap
    cell: tuple[int, int]  # width, height of one cell

    def cell_box(self, f: int, i: int) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of filter f's cell on image i, right and bottom exclusive."""
        (x, y), (w, h) = self.at, self.cell
        return x + i * w, y + f * h, x + (i + 1) * w, y + (f + 1) * h


def filter_map_page(
    model: str,
    layer: str,
    weights: str,
    set_name: str,
    images: Sequence[str],
    means: np.ndarray,
    lut: np.ndarray,
) -> FilterMap:
    """The heatmap of `means` (C filters x N images) with filter indices down the left, image
    names across the top (turned) and the layer's color scale."""
    filters, count = means.shape
    cw, rh = cell_size(filters, count)
    low, high = _range(means)
    heat = _heat(means, low, high, lut).resize((count * cw, filters * rh), Image.Resampling.NEAREST)
    names = [_turned(_short(name)) for name in images]
    name_h = max(n.height for n in names) + 6
    label_w = sheets.text_width(str(filters - 1), 11) + 10
    title = f"{model} · {layer} · mean activation of every filter on every image of set {set_name}"
    note = (f"{filters} filters (down) x {count} images (across) · {weights} · one color scale "
            "for the layer")  # fmt: skip
    scale = sheets.ColorScale(f"mean activation of a filter on an image, {layer}",
                              sheets.value_ticks(low, high), lut)  # fmt: skip
    bar_w = max(320, min(heat.width, 640))
    text_w = max(sheets.text_width(title, 18), sheets.text_width(note, 12))
    width = max(label_w + heat.width, text_w, bar_w) + 2 * sheets.MARGIN
    top = sheets.MARGIN + 26 + 17 + 8
    x0, y0 = sheets.MARGIN + label_w, top + name_h
    height = y0 + heat.height + 12 + sheets.colorbar_height() + sheets.MARGIN
    canvas = Image.new("RGB", (width, height), sheets.BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    draw.text((sheets.MARGIN, sheets.MARGIN), title, font=sheets.font(18), fill=sheets.INK)
    draw.text((sheets.MARGIN, sheets.MARGIN + 26), note, font=sheets.font(12), fill=sheets.MUTED)
    for i, mask in enumerate(names):
        canvas.paste(sheets.INK, (x0 + i * cw + (cw - mask.width) // 2, y0 - 4 - mask.height), mask)
    canvas.paste(heat, (x0, y0))
    for f in _labelled_filters(filters, rh):
        mask = sheets.text_mask(str(f), 11)
        cy = y0 + f * rh + rh // 2
        canvas.paste(sheets.INK, (x0 - 6 - mask.width, cy - mask.height // 2), mask)
        draw.line((x0 - 4, cy, x0 - 1, cy), fill=sheets.INK)
    sheets.draw_colorbar(canvas, (sheets.MARGIN + label_w, y0 + heat.height + 12), bar_w, scale)
    return FilterMap(canvas, (x0, y0), (cw, rh))


def _range(means: np.ndarray) -> tuple[float, float]:
    finite = means[np.isfinite(means)]
    if finite.size == 0:
        return 0.0, 0.0
    return float(finite.min()), float(finite.max())


def _heat(means: np.ndarray, low: float, high: float, lut: np.ndarray) -> Image.Image:
    span = high - low
    unit = np.zeros(means.shape) if span <= 0 else (np.nan_to_num(means, nan=low) - low) / span
    image = Image.fromarray(quantize(unit, 256), mode="P")
    image.putpalette(np.asarray(lut, dtype=np.uint8).tobytes())
    return image.convert("RGB")


def _short(name: str) -> str:
    return name if len(name) <= NAME_CHARS else name[: NAME_CHARS - 1] + "…"


def _turned(text: str) -> Image.Image:
    """An image name as a mask reading upwards, to stand over its column."""
    return sheets.text_mask(text, 11).rotate(90, expand=True)


def _labelled_filters(filters: int, row_height: int) -> list[int]:
    """Filter indices to label: every one where rows are tall enough, else every 2nd, 5th,
    10th, ... so that labels are at least 14 px apart."""
    need = math.ceil(14 / row_height)
    step = next(s for m in (1, 10, 100, 1000) for s in (m, 2 * m, 5 * m) if s >= need)
    return list(range(0, filters, step))
