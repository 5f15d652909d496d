"""Dataset examples: one picture per layer with, for every filter, its top images of a set by max
activation, each as the part of the input (as the model saw it) that the maximum's unit sees.

A crop is the unit's whole receptive field, also where it reaches past the image's border
(gray there), so every tile of a layer has one scale and the unit sits at its centre; small
fields are enlarged with nearest neighbours (honest pixels), large ones reduced. A unit whose
field covers the whole image shows the whole input with its position framed. Pillow only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from PIL import Image, ImageDraw

from . import sheets
from .receptive import Field
from .topimages import Example

OUTSIDE = (205, 205, 205)  # the part of a field beyond the image's border
MARK = (230, 30, 30)  # frame around the unit on a whole-image tile
GAP = 6
BAND = 14  # under a tile: rank and value
PAGE_WIDTH = 2400  # filter blocks wrap into columns up to about this width


def tile_size(filters: int) -> int:
    """Tiles shrink as layers grow, so that 512 filters still fit on a page that opens (about
    15 megapixels, 10 MB)."""
    return 96 if filters <= 64 else 72 if filters <= 128 else 56 if filters <= 256 else 48


def load_inputs(paths: Mapping[str, str | Path]) -> dict[str, Image.Image]:
    """image name -> its input.png as RGB."""
    return {name: Image.open(path).convert("RGB") for name, path in paths.items()}


def field_crop(image: Image.Image, field: Field, y: int, x: int, tile: int) -> Image.Image:
    """Unit (y, x)'s receptive field in `image`, scaled to fit a `tile` square: its whole span,
    gray beyond the border; or, if it covers the image or the layer's fields are wider than the
    image, the whole image with the unit framed and what it does not see faded."""
    if field.covers(y, x) or wider_than_image(field):
        return _whole(image, field, y, x, tile)
    top, left, bottom, right = field.span(y, x)
    window = Image.new("RGB", (right - left, bottom - top), OUTSIDE)
    b_top, b_left, b_bottom, b_right = field.box(y, x)
    window.paste(image.crop((b_left, b_top, b_right, b_bottom)), (b_left - left, b_top - top))
    return _fit(window, tile)


def wider_than_image(field: Field) -> bool:
    """Fields at least as large as the image: a crop would be mostly border, so the page shows
    the whole input instead."""
    top, left, bottom, right = field.seen
    return field.size[0] >= bottom - top and field.size[1] >= right - left


def _fit(image: Image.Image, tile: int) -> Image.Image:
    """Enlarged by a whole factor with nearest neighbours (every input pixel a square block), or
    reduced with a box filter, to fit a `tile` square."""
    side = max(image.size)
    if side <= tile:
        k = tile // side
        return image.resize((image.width * k, image.height * k), Image.Resampling.NEAREST)
    size = (max(1, round(image.width * tile / side)), max(1, round(image.height * tile / side)))
    return image.resize(size, Image.Resampling.BOX)


def _whole(image: Image.Image, field: Field, y: int, x: int, tile: int) -> Image.Image:
    shown = _fit(image, tile)
    sy, sx = shown.height / image.height, shown.width / image.width
    if not field.covers(y, x):  # fade what the unit does not see
        top, left, bottom, right = field.box(y, x)
        box = (round(left * sx), round(top * sy), round(right * sx), round(bottom * sy))
        seen = shown.crop(box)
        shown = Image.blend(shown, Image.new("RGB", shown.size, sheets.BACKGROUND), 0.6)
        shown.paste(seen, box[:2])
    top, left, bottom, right = field.cell(y, x)
    # at least 5 px, so that a unit of a small stride stays visible on a reduced image
    cy, cx = (top + bottom) / 2 * sy, (left + right) / 2 * sx
    hy, hx = max(5, (bottom - top) * sy) / 2, max(5, (right - left) * sx) / 2
    ImageDraw.Draw(shown).rectangle(
        (round(cx - hx), round(cy - hy), round(cx + hx) - 1, round(cy + hy) - 1), outline=MARK,
        width=2,
    )  # fmt: skip
    return shown


@dataclass(frozen=True)
class Layout:
    """Filter blocks (index label, then k tiles with their bands) in `columns` columns."""

    filters: int
    k: int
    tile: int
    label: int  # width of the filter-index column

    @property
    def block(self) -> tuple[int, int]:
        return self.label + self.k * (self.tile + GAP), self.tile + BAND + GAP

    @property
    def columns(self) -> int:
        fit = (PAGE_WIDTH - 2 * sheets.MARGIN) // (self.block[0] + 3 * GAP)
        return max(1, min(self.filters, fit))

    @property
    def rows(self) -> int:
        return math.ceil(self.filters / self.columns)

    def origin(self, i: int) -> tuple[int, int]:
        """Top-left corner of filter block i (column-major: filters run down, then across)."""
        col, row = divmod(i, self.rows)
        return col * (self.block[0] + 3 * GAP), row * self.block[1]

    @property
    def size(self) -> tuple[int, int]:
        return self.columns * (self.block[0] + 3 * GAP) - 3 * GAP, self.rows * self.block[1]


@dataclass
class Page:
    """A drawn page and where its filter blocks lie in it."""

    image: Image.Image
    layout: Layout
    at: tuple[int, int]  # the first block's top-left corner
    filters: list[int]

    def tile_origin(self, i: int, j: int) -> tuple[int, int]:
        """Top-left corner of the tile square of block i's j-th example."""
        bx, by = self.layout.origin(i)
        return self.at[0] + bx + self.layout.label + j * (self.layout.tile + GAP), self.at[1] + by


def examples_page(
    model: str,
    layer: str,
    weights: str,
    set_name: str,
    image_count: int,
    field: Field,
    examples: Mapping[int, Sequence[Example]],
    inputs: Mapping[str, Image.Image],
    k: int,
    tile: int | None = None,
) -> Page:
    """The page of one layer: `examples` = filter -> its examples by max, strongest first (as
    `topimages.by_filter` returns them); `inputs` = image name -> input.png; `weights` says which
    weights made the maps (`describe.weights_text`)."""
    filters = sorted(examples)
    tile = tile or tile_size(len(filters))
    layout = Layout(len(filters), k, tile, sheets.text_width(str(max(filters, default=0)), 12) + 10)
    title = f"{model} · {layer} · what each filter responds to in set {set_name}"
    notes = [
        f"{len(filters)} filters, each with its {min(k, image_count)} of the set's {image_count} "
        f"images with the highest max activation (rank: value under each) · {weights}",
        _scale_note(field, tile),
    ]
    text_w = max([sheets.text_width(title, 18)] + [sheets.text_width(t, 12) for t in notes])
    width = max(layout.size[0], text_w) + 2 * sheets.MARGIN
    top = sheets.MARGIN + 26 + 17 * len(notes) + 8
    canvas = Image.new("RGB", (width, top + layout.size[1] + sheets.MARGIN), sheets.BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    draw.text((sheets.MARGIN, sheets.MARGIN), title, font=sheets.font(18), fill=sheets.INK)
    for i, note in enumerate(notes):
        draw.text((sheets.MARGIN, sheets.MARGIN + 26 + 17 * i), note, font=sheets.font(12),
                  fill=sheets.MUTED)  # fmt: skip
    page = Page(canvas, layout, (sheets.MARGIN, top), filters)
    for i, f in enumerate(filters):
        _draw_block(page, i, examples[f], field, inputs)
    return page


def _draw_block(page: Page, i: int, ranked, field: Field, inputs) -> None:
    layout, canvas = page.layout, page.image
    x, y = page.tile_origin(i, 0)
    mask = sheets.text_mask(str(page.filters[i]), 12)
    canvas.paste(sheets.INK, (x - 8 - mask.width, y + (layout.tile - mask.height) // 2), mask)
    for j, e in enumerate(ranked[: layout.k]):
        tx, ty = page.tile_origin(i, j)
        crop = field_crop(inputs[e.image], field, e.y, e.x, layout.tile)
        pad = layout.tile - crop.width, layout.tile - crop.height
        canvas.paste(crop, (tx + pad[0] // 2, ty + pad[1] // 2))
        text = sheets.text_mask(f"{e.rank}: {sheets.format_value(e.value)}", 11)
        canvas.paste(sheets.MUTED, (tx + max(0, (layout.tile - text.width) // 2),
                                    ty + layout.tile + 1), text)  # fmt: skip


def _scale_note(field: Field, tile: int) -> str:
    (sy, sx), (ty, tx) = field.size, field.stride
    size = f"{sy}x{sx}" if sy == sx else f"{sy} x {sx}"
    stride = f"{ty}" if ty == tx else f"{ty} x {tx}"
    if wider_than_image(field):
        return (f"the receptive field ({size} input px, stride {stride}) is as large as the image "
                "or larger: every tile is the whole input, the red frame marks the maximum's unit, "
                "faded: what that unit does not see")  # fmt: skip
    note = (f"tiles: the maximum's unit's receptive field ({size} input px, stride {stride}), "
            f"enlarged by a whole factor or reduced to at most {tile} px; gray: beyond the image's "
            "border")  # fmt: skip
    h, w = field.map_size
    if field.covers(h // 2, w // 2):  # the middle unit is the first to see everything
        note += "; a unit that sees the whole image: the whole input, the unit framed in red"
    return note
