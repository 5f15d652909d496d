"""Compare two activation folders layer by layer: A and B side by side on one shared scale, and
their difference A - B.

A layer is compared when both folders hold it with the same shape (two images through one model,
or two models whose module names and shapes match). The shared scale of a layer is [min, max] over
the values of both, so equal colors mean equal activations in A and B; the difference is shown on
a symmetric diverging scale [-m, m], m = max |A - B| of the layer.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw

from . import sheets
from .normalize import to_unit
from .render import quantize

PANEL_WIDTH = 960
COLUMNS = (
    "layer", "status", "filters", "height", "width", "low", "high", "max_abs_difference", "note",
)  # fmt: skip


class CompareError(ValueError):
    """Nothing to compare; the message says why for each layer."""


def matching_layers(
    a: Mapping[str, Sequence[int]], b: Mapping[str, Sequence[int]]
) -> tuple[list[str], list[tuple[str, str]]]:
    """Layers present in both with equal shapes (in A's order), and (layer, reason) for the rest."""
    compared, skipped = [], []
    for layer, shape in a.items():
        if layer not in b:
            skipped.append((layer, "only in A"))
        elif tuple(b[layer]) != tuple(shape):
            skipped.append((layer, f"shapes differ: A {tuple(shape)}, B {tuple(b[layer])}"))
        else:
            compared.append(layer)
    skipped += [(layer, "only in B") for layer in b if layer not in a]
    return compared, skipped


def shared_range(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """[min, max] over the values of both maps."""
    return float(min(a.min(), b.min())), float(max(a.max(), b.max()))


def difference_limit(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())


def level_image(unit: np.ndarray, lut: np.ndarray) -> Image.Image:
    """A unit-scaled map as a palette image at its own resolution."""
    image = Image.fromarray(quantize(unit, 256), mode="P")
    image.putpalette(np.asarray(lut, dtype=np.uint8).tobytes())
    return image


def panel_tiles(maps: np.ndarray, low: float, high: float, lut, size) -> list[Image.Image]:
    return [sheets.tile(level_image(to_unit(m, low, high), lut), size) for m in maps]


def difference_tiles(a: np.ndarray, b: np.ndarray, limit: float, lut, size) -> list[Image.Image]:
    tiles = []
    for fa, fb in zip(a, b):
        d = np.asarray(fa, np.float64) - np.asarray(fb, np.float64)
        unit = np.full(d.shape, 0.5) if limit <= 0 else (d / limit + 1.0) / 2.0
        tiles.append(sheets.tile(level_image(unit, lut), size))
    return tiles


def compose_comparison(
    title: str,
    lines: Sequence[str],
    headings: Sequence[str],
    thumbnails: Sequence[Image.Image | None],
    grid: sheets.Grid,
    panels: Sequence[Sequence[Image.Image]],
    labels: Sequence[str],
    scales: Sequence[sheets.ColorScale],
) -> Image.Image:
    """Title and notes, then panels side by side (heading with an optional thumbnail, tile grid,
    colorbar), e.g. A | B | A - B."""
    pad = sheets.MARGIN
    gw, gh = grid.size
    panel_w = max(gw, 340)
    text_w = max([sheets.text_width(title, 18)] + [sheets.text_width(t, 12) for t in lines])
    width = max(len(panels) * (panel_w + pad) - pad, text_w) + 2 * pad
    thumb_h = max([t.height for t in thumbnails if t is not None], default=0)
    head_h = max(thumb_h, 20) + 8
    header = 26 + 17 * len(lines) + 8
    height = pad + header + head_h + gh + 8 + sheets.colorbar_height() + pad
    canvas = Image.new("RGB", (width, height), sheets.BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    draw.text((pad, pad), title, font=sheets.font(18), fill=sheets.INK)
    y = pad + 26
    for line in lines:
        draw.text((pad, y), line, font=sheets.font(12), fill=sheets.MUTED)
        y += 17
    y += 8
    for i, (heading, thumb, tiles, scale) in enumerate(zip(headings, thumbnails, panels, scales)):
        x = pad + i * (panel_w + pad)
        tx = x + sheets.GAP
        if thumb is not None:
            canvas.paste(thumb, (tx, y))
            tx += thumb.width + 10
        draw.text((tx, y + head_h / 2 - 4), heading, font=sheets.font(15), fill=sheets.INK,
                  anchor="lm")  # fmt: skip
        sheets.draw_grid(canvas, (x, y + head_h), grid, tiles, labels)
        bar_w = min(panel_w - 2 * sheets.GAP, 480)
        sheets.draw_colorbar(canvas, (x + sheets.GAP, y + head_h + gh + 8), bar_w, scale)
    return canvas


def thumbnail(image: Image.Image, height: int = 64) -> Image.Image:
    width = max(1, round(image.width * height / image.height))
    return image.convert("RGB").resize((width, height), Image.Resampling.BOX)
