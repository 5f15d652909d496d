"""Receptive fields: the input pixels a unit of a layer can see, measured on the model itself.

A unit's field is the support of its gradient with respect to the input on a linearized network:
activations and normalizations act as identities, max-pooling as a window sum and every weight
is positive, so that no path switches off or cancels another and the support is the union over
all paths (strided shortcuts, concatenations). A per-channel gate computed from the whole image
(squeeze-excitation) scales a unit without moving where it looks, so its gradient is left out.
A layer's field is the union over its channels.

The units of a layer lie on a grid: unit (y, x) sees `size` rows from row `offset + stride * y`
(and so for columns), clipped to the part of the image the layer sees at all (`seen`: all of it,
unless a stride leaves the last rows unread). This is the bounding box of the support; only a
dilated kernel whose taps are further apart than its input's field can see less at a border
(the box then still spans the hole). Deep layers' fields are larger than the image: most or all
of their units see all of it.

Measured cheaply (`fieldprobe`, with torch): channels are collapsed to one, each layer is probed
at a few units, inputs taller and wider than the image measure fields the image is too small to
show whole, and the grid is checked at the real input size at its first, middle and last units.
Layer names are call ids, as `models.capture` names them. This module is pure Python: a set step
reads the table without torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

from .files import read_tsv, write_tsv

COLUMNS = (
    "layer", "height", "width", "size_y", "size_x", "stride_y", "stride_x", "offset_y",
    "offset_x", "image_height", "image_width", "seen_top", "seen_left", "seen_bottom",
    "seen_right", "whole",
)  # fmt: skip
PROBE_SCALES = (2, 4, 8, 16)  # taller (wider) probe inputs, in multiples of the input size


class FieldError(ValueError):
    """A receptive field that cannot be measured or described; the message says which and why."""


@dataclass(frozen=True)
class Field:
    """Where the units of one layer look, for one input size; pairs are (y, x)."""

    layer: str
    map_size: tuple[int, int]  # height, width of the layer's map
    image_size: tuple[int, int]  # height, width of the input (img_size as the model saw it)
    size: tuple[int, int]  # extent of one unit's field in input pixels
    stride: tuple[int, int]  # input pixels between the fields of neighbouring units
    offset: tuple[int, int]  # first row, column of unit (0, 0)'s field (negative: padding)
    # (top, left, bottom, right): the input pixels any unit sees; the whole image, unless the
    # network never reads its last rows or columns (a stride that does not divide the size)
    seen: tuple[int, int, int, int]

    def span(self, y: int, x: int) -> tuple[int, int, int, int]:
        """(top, left, bottom, right) of unit (y, x)'s field, ends exclusive, not clipped."""
        top = self.offset[0] + self.stride[0] * y
        left = self.offset[1] + self.stride[1] * x
        return top, left, top + self.size[0], left + self.size[1]

    def box(self, y: int, x: int) -> tuple[int, int, int, int]:
        """(top, left, bottom, right) of unit (y, x)'s field clipped to the image (to the part
        of it the layer sees), ends exclusive."""
        h, w = self.map_size
        if not (0 <= y < h and 0 <= x < w):
            raise IndexError(f"unit ({y}, {x}) is outside the {h}x{w} map of {self.layer}")
        top, left, bottom, right = self.span(y, x)
        s_top, s_left, s_bottom, s_right = self.seen
        return max(top, s_top), max(left, s_left), min(bottom, s_bottom), min(right, s_right)

    def covers(self, y: int, x: int) -> bool:
        """Whether unit (y, x) sees the whole image (all of it that the layer sees)."""
        return self.box(y, x) == self.seen

    @property
    def whole(self) -> bool:
        """Whether every unit of the layer sees the whole image (the corner units are the last
        to)."""
        h, w = self.map_size
        return self.covers(0, 0) and self.covers(h - 1, w - 1)

    def cell(self, y: int, x: int) -> tuple[int, int, int, int]:
        """The stride-sized box centred on unit (y, x)'s field, clipped: where the unit sits in
        the image, for marking it when its field covers everything."""
        top, left, bottom, right = self.span(y, x)
        cy, cx = (top + bottom) / 2, (left + right) / 2
        sy, sx = (max(1, min(s, n)) for s, n in zip(self.stride, self.image_size))
        t, l = math.floor(cy - sy / 2), math.floor(cx - sx / 2)  # noqa: E741
        height, width = self.image_size
        return max(t, 0), max(l, 0), min(t + sy, height), min(l + sx, width)


def write_table(path, fields: Iterable[Field]) -> None:
    write_tsv(path, COLUMNS, (
        (f.layer, *f.map_size, *f.size, *f.stride, *f.offset, *f.image_size, *f.seen,
         int(f.whole))
        for f in fields
    ))  # fmt: skip


def read_table(path) -> dict[str, Field]:
    """layer -> Field, in the table's (network) order."""
    fields = {}
    for row in read_tsv(path):
        try:
            pair = lambda a, b: (int(row[a]), int(row[b]))  # noqa: E731
            fields[row["layer"]] = Field(
                row["layer"], pair("height", "width"), pair("image_height", "image_width"),
                pair("size_y", "size_x"), pair("stride_y", "stride_x"),
                pair("offset_y", "offset_x"),
                tuple(int(row[f"seen_{side}"]) for side in ("top", "left", "bottom", "right")),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError) as err:
            raise FieldError(f"{path}: not a receptive field table ({err!r}); expected columns "
                             f"{', '.join(COLUMNS)}") from None  # fmt: skip
    return fields


def measure_fields(model, image_size: Sequence[int], layers: Sequence[str]) -> list[Field]:
    """The receptive field of every layer in `layers` (call ids, as in layers.tsv) of `model` (a
    torchvision classification model on the CPU; it is put in eval mode) for inputs of
    `image_size` (height, width). Raises FieldError for a name that is not a feature map, and for
    a layer after adaptive pooling with uneven windows (no grid describes its units)."""
    from . import fieldprobe  # noqa: PLC0415 - torch is imported only here

    height, width = (int(v) for v in image_size)
    return fieldprobe.measure(model, (height, width), list(layers))


def from_supports(layer: str, seen: tuple[int, int], first, second, axis: int):
    """(size, stride, offset) along `axis` (0 = y) from the supports of two neighbouring units,
    each (index, start, end), or None when a support reaches an end of `seen` (start, end: what
    any unit of the layer sees of the probe), where it may be clipped."""
    (i, a1, b1), (j, a2, b2) = first, second
    if j != i + 1:
        raise ValueError(f"units {i} and {j} are not neighbours")
    if a1 <= seen[0] or b2 >= seen[1]:
        return None
    if b1 - a1 != b2 - a2:
        raise FieldError(
            f"layer {layer}: neighbouring units along {'yx'[axis]} see {b1 - a1} and {b2 - a2} "
            "input pixels: the field is not the same for every unit"
        )
    stride = a2 - a1
    return b1 - a1, stride, a1 - stride * i
