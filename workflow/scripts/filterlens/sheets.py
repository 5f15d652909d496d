"""Contact sheets: every filter of a layer in one grid image, labelled, with the scale it shows.

Tiles are the run's own frames in frames.tsv order, shrunk by a whole factor (box average; a
palette frame averages its color levels, the mapped values, not the colors) or enlarged with
nearest neighbours (honest pixels). Each tile carries its
filter index. A sheet states its scale: with `layer` or `global` normalization every tile shares
one range and the colorbar prints activation values; with `filter` normalization each tile has its
own range, so the bar prints no numbers and says so.

Only Pillow and NumPy: a sheet job starts in a fraction of a second.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from . import png

SHEET_WIDTH = 1024  # the grid's target width in pixels; 512 filters get tiles of about 32 px
MAX_TILE = 160
MIN_TILE = 40
GAP = 8  # between tiles: room for the frame that marks a top filter
LABEL = 14  # height of the band under a tile that carries its filter index
MARGIN = 16
BAR_HEIGHT = 14
BACKGROUND = (255, 255, 255)
INK = (25, 25, 25)
MUTED = (95, 95, 95)
MEAN_COLOR = (235, 110, 0)  # frame around a top filter by mean activation
MAX_COLOR = (30, 90, 200)  # label band of a top filter by max activation
# A mark touches the tile through a line one pixel wide, dark where the tile pixel it touches is
# light and light where it is dark: no single color reaches 3:1 against every tile color (a gray
# of luminance 0.18 has 4.6:1 against black and white, and less against anything else), but one of
# these two always does. The marks' own colors have 3:1 against both and against the white page.
RING_DARK = (0, 0, 0)
RING_LIGHT = (255, 255, 255)
GRAY = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)


@lru_cache(maxsize=None)
def font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


@dataclass(frozen=True)
class Grid:
    """Where the tiles of `count` filters go: row-major, `columns` per row."""

    count: int
    columns: int
    tile: tuple[int, int]  # (width, height) of one tile
    gap: int = GAP
    label: int = LABEL

    @property
    def rows(self) -> int:
        return math.ceil(self.count / self.columns)

    @property
    def cell(self) -> tuple[int, int]:
        return self.tile[0] + self.gap, self.tile[1] + self.label + self.gap

    @property
    def size(self) -> tuple[int, int]:
        return self.columns * self.cell[0] + self.gap, self.rows * self.cell[1] + self.gap

    def origin(self, i: int) -> tuple[int, int]:
        """Top-left corner of tile i, relative to the grid's corner."""
        row, col = divmod(i, self.columns)
        return self.gap + col * self.cell[0], self.gap + row * self.cell[1]


def make_grid(
    count: int,
    frame_size: tuple[int, int],
    width: int = SHEET_WIDTH,
    max_tile: int = MAX_TILE,
    min_tile: int = MIN_TILE,
    block: int | None = None,
) -> Grid:
    """A grid near-square in pixels. Tiles shrink or grow frames by a whole factor, and where
    `block` (frame pixels per map pixel of nearest-upsampled maps) is given, by one that divides
    it, so that the blocks stay sharp (a 224 px frame of a 7x7 map, block 32: 28 px tiles of
    4 px blocks)."""
    if count < 1:
        raise ValueError("a contact sheet needs at least one frame")
    fw, fh = frame_size
    columns = min(count, max(1, math.ceil(math.sqrt(count * fh / fw))))
    box = min(max_tile, max(min_tile, width // columns - GAP))
    side = max(fw, fh)
    if side > box:
        k = math.ceil(side / box)
        # a little smaller still, where a divisor keeps the map's blocks (or the boxes) whole
        whole = (lambda d: block % d == 0) if block else (lambda d: fw % d == 0 and fh % d == 0)
        k = next((d for d in range(k, 2 * k + 1) if whole(d)), k)
        size = (math.ceil(fw / k), math.ceil(fh / k))
    else:
        k = max(1, box // side)
        size = (fw * k, fh * k)
    return Grid(count, columns, size)


def tile(frame: Image.Image, size: tuple[int, int]) -> Image.Image:
    """`frame` as an RGB tile of `size`: a whole-factor reduction (box average) or a
    nearest-neighbour enlargement. A palette frame is reduced in its color levels, then colored."""
    if frame.mode == "P":
        lut = np.asarray(frame.getpalette()[:768], dtype=np.uint8).reshape(-1, 3)
        return tile_of(np.asarray(frame), size, lut)
    if frame.mode.startswith("I;16") or frame.mode == "I":
        return tile_of((np.asarray(frame, dtype=np.uint32) >> 8).astype(np.uint8), size, GRAY)
    return tile_of(np.asarray(frame.convert("RGB") if frame.mode != "L" else frame), size,
                   GRAY if frame.mode == "L" else None)  # fmt: skip


def tiles_of(frames: np.ndarray, size: tuple[int, int], lut: np.ndarray | None) -> np.ndarray:
    """The tiles of a stack of frames: color levels (N x H x W, uint8) colored by `lut`, or RGB
    (N x H x W x 3) with lut None; returns N x h x w x 3 uint8. A frame larger than the tile is
    reduced by a whole factor (box average, Pillow's), a smaller one enlarged (nearest); levels
    are reduced before they are colored."""
    n, height, width = frames.shape[:3]
    if n == 0:
        return np.zeros((0, size[1], size[0], 3), np.uint8)
    k = max(math.ceil(width / size[0]), math.ceil(height / size[1]))
    shrunk = []
    for frame in frames:
        image = Image.fromarray(np.ascontiguousarray(frame))
        if k > 1:
            image = image.reduce(k)
        if image.size != size:
            image = image.resize(size, Image.Resampling.NEAREST)
        shrunk.append(np.asarray(image))
    tiles = np.stack(shrunk)
    return tiles if lut is None else np.asarray(lut, dtype=np.uint8)[tiles]


def tile_of(pixels: np.ndarray, size: tuple[int, int], lut: np.ndarray | None) -> Image.Image:
    """The tile of one frame given as an array (see tiles_of)."""
    return Image.fromarray(tiles_of(np.asarray(pixels)[None], size, lut)[0], "RGB")


@dataclass
class ColorScale:
    """What a colorbar says: a title, (position 0..1 along the bar, text) ticks and its colors."""

    title: str
    ticks: list[tuple[float, str]]
    lut: np.ndarray  # 256 x 3 uint8


def format_value(v: float) -> str:
    text = f"{v:.3g}"
    return "0" if text in ("-0", "0") else text.replace("e-0", "e-").replace("e+0", "e")


def nice_ticks(low: float, high: float, target: int = 4) -> list[float]:
    """Round values (1, 2, 2.5 or 5 times a power of ten) inside [low, high]."""
    span = high - low
    if not (span > 0 and math.isfinite(span)):
        return []
    raw = span / target
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * 0.999)
    first = math.ceil(low / step - 1e-9)
    values = [round((first + i) * step, 12) for i in range(target * 3)]
    return [v for v in values if low - 1e-12 * span <= v <= high + 1e-12 * span]


def value_ticks(low: float, high: float, cdf: np.ndarray | None = None) -> list[tuple[float, str]]:
    """Ticks for a shared scale [low, high]: both ends with their exact values, round values in
    between. With histogram equalization (`cdf` of the scope) colors are ranks, so the ticks sit at
    evenly spaced colors and print the activation each color stands for."""
    if not high > low:
        return [(0.0, format_value(low)), (1.0, format_value(low))]
    if cdf is not None:
        from .normalize import HIST_BINS  # noqa: PLC0415

        centers = (np.arange(HIST_BINS, dtype=np.float64) + 0.5) / HIST_BINS
        colors = np.linspace(0.0, 1.0, 5)
        units = np.interp(colors, np.asarray(cdf, dtype=np.float64), centers)
        units[0], units[-1] = 0.0, 1.0
        return [(float(c), format_value(low + u * (high - low))) for c, u in zip(colors, units)]
    ticks = [(0.0, format_value(low)), (1.0, format_value(high))]
    for v in nice_ticks(low, high):
        pos = (v - low) / (high - low)
        if 0.08 < pos < 0.92:
            ticks.append((pos, format_value(v)))
    return sorted(ticks)


def scale_for(
    mode: str,
    layer: str,
    lows: Sequence[float],
    highs: Sequence[float],
    lut: np.ndarray,
    clip: Sequence[float] | None = None,
    cdf: np.ndarray | None = None,
) -> ColorScale:
    """The colorbar of a layer's sheet under normalization `mode`, from its scales.tsv rows."""
    shared = len(set(lows)) == 1 and len(set(highs)) == 1
    if mode == "filter" or not shared:
        title = (
            "normalization per filter: each tile runs from its own minimum to its own maximum, "
            "so brightness cannot be compared between tiles"
        )
        ticks = [(0.0, "each filter's min"), (1.0, "each filter's max")]
        return ColorScale(_clipped(title, clip, cdf), ticks, lut)
    scope = f"shared by all {len(lows)} filters of {layer}"
    if mode == "global":
        scope = "shared by every filter of every layer of this image"
    title = f"raw activation, normalization {mode}: one scale {scope}"
    cdf_row = None if cdf is None else np.asarray(cdf).reshape(-1, np.asarray(cdf).shape[-1])[0]
    return ColorScale(_clipped(title, clip, cdf), value_ticks(lows[0], highs[0], cdf_row), lut)


def _clipped(title: str, clip, cdf) -> str:
    if clip is not None:
        title += f"; clipped at percentiles {clip[0]:g}-{clip[1]:g} (beyond: end colors)"
    if cdf is not None:
        title += "; histogram-equalized (ticks: the activation at each color)"
    return title


@lru_cache(maxsize=8192)
def text_mask(text: str, size: int) -> Image.Image:
    """`text` drawn once as an alpha mask, as tall as the font's line: pasting it with a color
    is several times faster than drawing the text again, and sheets repeat their labels."""
    ascent, descent = font(size).getmetrics()
    mask = Image.new("L", (max(1, math.ceil(font(size).getlength(text))), ascent + descent))
    ImageDraw.Draw(mask).text((0, 0), text, font=font(size), fill=255)
    return mask


def text_width(text: str, size: int) -> int:
    left, _, right, _ = font(size).getbbox(text)
    return right - left


def draw_grid(
    canvas: Image.Image,
    at: tuple[int, int],
    grid: Grid,
    tiles: Sequence[Image.Image] | np.ndarray,
    labels: Sequence[str],
    marks: Mapping[int, set[str]] | None = None,
) -> None:
    """Paste `tiles` (row-major; images, or an N x h x w x 3 array) with their labels; marks: tile position -> {"mean", "max"}.
    "mean": a MEAN_COLOR frame around tile and label; "max": a MAX_COLOR label band. Each mark
    meets the tile (and the frame its label) through a contrast line (see RING_DARK)."""
    w, h = grid.tile
    if isinstance(tiles, np.ndarray):  # N x h x w x 3: the whole grid in one paste
        area = np.asarray(canvas.crop((*at, at[0] + grid.size[0], at[1] + grid.size[1]))).copy()
        for i, pixels in enumerate(tiles):
            x, y = grid.origin(i)
            area[y : y + h, x : x + w] = pixels
        canvas.paste(Image.fromarray(area, "RGB"), at)
    else:
        for i, image in enumerate(tiles):
            x, y = grid.origin(i)
            canvas.paste(image, (at[0] + x, at[1] + y))
    draw = ImageDraw.Draw(canvas)
    marks = marks or {}
    for i, label in enumerate(labels):
        x, y = grid.origin(i)
        x, y = x + at[0], y + at[1]
        ink = INK
        if "max" in marks.get(i, ()):
            draw.rectangle((x, y + h, x + w - 1, y + h + grid.label - 1), fill=MAX_COLOR)
            ink = (255, 255, 255)
        if "mean" in marks.get(i, ()):
            draw.rectangle((x - 4, y - 4, x + w + 3, y + h + grid.label + 3), outline=MEAN_COLOR,
                           width=3)  # fmt: skip
        mask = text_mask(label, 11)
        top = y + h + (grid.label - mask.height) // 2 + 1
        canvas.paste(ink, (x + (w - mask.width) // 2, top), mask)
    for i, kinds in marks.items():
        x, y = grid.origin(i)
        x, y = x + at[0], y + at[1]
        if "max" in kinds:  # the band's top row, against the tile's bottom row
            contrast_line(canvas, (x, y + h, x + w, y + h + 1), (0, -1))
        if "mean" in kinds:  # the frame's inner ring, against the tile and its label
            contrast_ring(canvas, (x - 1, y - 1, x + w + 1, y + h + grid.label + 1))


def luminance(rgb: np.ndarray) -> np.ndarray:
    """WCAG relative luminance of sRGB colors (..., 3) uint8."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    c = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return c @ np.array([0.2126, 0.7152, 0.0722])


def contrast(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """WCAG contrast ratio (1 to 21) between colors a and b."""
    la, lb = luminance(a), luminance(b)
    return (np.maximum(la, lb) + 0.05) / (np.minimum(la, lb) + 0.05)


def ring_colors(touched: np.ndarray) -> np.ndarray:
    """For each touched color (..., 3), RING_DARK or RING_LIGHT, whichever contrasts more."""
    dark = contrast(touched, np.array(RING_DARK)) >= contrast(touched, np.array(RING_LIGHT))
    return np.where(dark[..., None], np.array(RING_DARK, np.uint8), np.array(RING_LIGHT, np.uint8))


def contrast_line(canvas: Image.Image, box: tuple[int, int, int, int], toward: tuple[int, int]):
    """Recolor the pixels of `box` (left, top, right, bottom; exclusive) each by the pixel one
    step `toward` (dx, dy) from it."""
    left, top, right, bottom = box
    dx, dy = toward
    touched = np.asarray(canvas.crop((left + dx, top + dy, right + dx, bottom + dy)))
    canvas.paste(Image.fromarray(ring_colors(touched), "RGB"), (left, top))


def contrast_ring(canvas: Image.Image, box: tuple[int, int, int, int]) -> None:
    """Recolor the one-pixel border of `box` by the pixels just inside it (corners: diagonally)."""
    left, top, right, bottom = box
    inside = np.asarray(canvas.crop((left + 1, top + 1, right - 1, bottom - 1)))
    edge = np.pad(inside, ((1, 1), (1, 1), (0, 0)), mode="edge")  # each border pixel's neighbour
    ring = np.asarray(canvas.crop(box)).copy()
    for rows, cols in ((0, slice(None)), (-1, slice(None)), (slice(None), 0), (slice(None), -1)):
        ring[rows, cols] = ring_colors(edge[rows, cols])
    canvas.paste(Image.fromarray(ring, "RGB"), (left, top))


def draw_colorbar(canvas: Image.Image, at: tuple[int, int], width: int, scale: ColorScale) -> int:
    """Title, bar and tick labels at `at`; returns the height used."""
    draw = ImageDraw.Draw(canvas)
    x, y = at
    draw.text((x, y), scale.title, font=font(12), fill=MUTED)
    y += 18
    ramp = np.asarray(scale.lut, dtype=np.uint8)[np.linspace(0, 255, width).round().astype(int)]
    canvas.paste(Image.fromarray(np.repeat(ramp[None], BAR_HEIGHT, axis=0), mode="RGB"), (x, y))
    draw.rectangle((x - 1, y - 1, x + width, y + BAR_HEIGHT), outline=MUTED)
    y += BAR_HEIGHT
    for pos, text in scale.ticks:
        tx = x + round(pos * (width - 1))
        draw.line((tx, y, tx, y + 4), fill=INK)
        half = text_width(text, 11) / 2
        cx = min(max(tx, x + half), x + width - half)
        draw.text((cx, y + 6), text, font=font(11), fill=INK, anchor="mt")
    return 18 + BAR_HEIGHT + 22


def colorbar_height() -> int:
    return 18 + BAR_HEIGHT + 22


@dataclass
class Sheet:
    """A drawn contact sheet and where its grid lies in it."""

    image: Image.Image
    grid: Grid
    at: tuple[int, int]  # the grid's top-left corner in the image

    def tile_box(self, i: int) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of tile i in the image, right and bottom exclusive."""
        x, y = self.grid.origin(i)
        x, y = x + self.at[0], y + self.at[1]
        return x, y, x + self.grid.tile[0], y + self.grid.tile[1]


def compose_sheet(
    title: str,
    lines: Sequence[str],
    grid: Grid,
    tiles: Sequence[Image.Image],
    labels: Sequence[str],
    scale: ColorScale,
    marks: Mapping[int, set[str]] | None = None,
    top_k: int | None = None,
) -> Sheet:
    """A whole sheet: title and notes, the tile grid, a legend for the marks and the colorbar.
    Marks are drawn only when they single filters out (top_k below the number of tiles)."""
    notes = list(lines)
    legend = marks is not None and top_k is not None
    text_w = max([text_width(title, 18)] + [text_width(t, 12) for t in notes + [scale.title]])
    bar_w = max(320, min(grid.size[0] - 2 * GAP, 640))
    width = max(grid.size[0], text_w + 4, bar_w + 2 * GAP, 560 if legend else 0) + 2 * MARGIN
    at = grid_origin(len(notes), legend)
    height = at[1] + grid.size[1] + 8 + colorbar_height() + MARGIN
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    y = MARGIN
    draw.text((MARGIN, y), title, font=font(18), fill=INK)
    y += 26
    for note in notes:
        draw.text((MARGIN, y), note, font=font(12), fill=MUTED)
        y += 17
    if legend:
        draw_marks_legend(draw, (MARGIN, y + 2), top_k, len(tiles))
    shown = marks if legend and top_k < len(tiles) else None
    draw_grid(canvas, at, grid, tiles, labels, shown)
    draw_colorbar(canvas, (MARGIN + GAP, at[1] + grid.size[1] + 8), bar_w, scale)
    return Sheet(canvas, grid, at)


def grid_origin(notes: int, legend: bool) -> tuple[int, int]:
    """Where a sheet's grid starts: below the title, `notes` lines and the legend of the marks."""
    return MARGIN, MARGIN + 26 + 17 * notes + (20 if legend else 0) + 4


def layer_sheet(
    tiles: Sequence[Image.Image],
    filters: Sequence[int],
    grid: Grid,
    title: str,
    lines: Sequence[str],
    scale: ColorScale,
    top: Mapping[str, set[int]] | None = None,
    top_k: int | None = None,
) -> Sheet:
    """The sheet of one layer from its tiles, in frames.tsv order, of `filters`; `top`:
    {"mean": filters, "max": filters} to mark."""
    marks = None
    if top is not None:
        marks = {i: {by for by, chosen in top.items() if f in chosen} for i, f in enumerate(filters)}
    labels = [str(f) for f in filters]
    return compose_sheet(title, lines, grid, tiles, labels, scale, marks, top_k)


def layer_lines(layer, frame_size: tuple[int, int], grid: Grid, weights: str, run: str,
                mode: str, style: str) -> list[str]:
    """The two lines under a layer sheet's title: what the tiles are, and how they are scaled.
    `layer` is an activations.Layer; `style` says how frames are colored."""
    return [
        f"{layer.channels} filters of {layer.module} ({layer.kind}), maps {layer.height}x"
        f"{layer.width}, tiles {grid.tile[0]}x{grid.tile[1]} from {frame_size[0]}x{frame_size[1]} "
        f"frames · {weights}",
        f"run {run}: normalization {mode}, {style}",
    ]


def draw_marks_legend(draw: ImageDraw.ImageDraw, at: tuple[int, int], k: int, count: int) -> None:
    x, y = at
    if k >= count:
        text = f"all {count} filters are among the top {k}: none marked (see top_filters.tsv)"
        draw.text((x, y + 7), text, font=font(12), fill=MUTED, anchor="lm")
        return
    draw.rectangle((x, y, x + 13, y + 13), outline=MEAN_COLOR, width=3)
    x += 19
    text = f"top {k} by mean activation"
    draw.text((x, y + 7), text, font=font(12), fill=INK, anchor="lm")
    x += text_width(text, 12) + 18
    draw.rectangle((x, y + 2, x + 22, y + 11), fill=MAX_COLOR)
    x += 28
    draw.text((x, y + 7), f"top {k} by max activation (see top_filters.tsv)", font=font(12),
              fill=INK, anchor="lm")  # fmt: skip


def sheet_png(image: Image.Image, photographic: bool = False) -> bytes:
    """PNG without ancillary chunks, at zlib level 1. Colormapped tiles: unfiltered rows
    (filterlens.png), half the time of Pillow's encoder there and smaller; photographs (crops of
    inputs): Pillow's filtered rows, 40% slower but up to 40% smaller there."""
    if not photographic:
        return png.rgb_png(np.asarray(image if image.mode == "RGB" else image.convert("RGB")))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()
