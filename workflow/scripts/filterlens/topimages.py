"""The images of a set that each filter responds to most: per filter of every layer, the top k by
mean and by max activation (top_images.tsv), each with where its maximum lies and the input box
the unit there can see.

Read from each image's per-filter statistics (filterlens.stats, written by extraction), never
from the maps. Ranks are per filter,
largest first; ties go to the image whose name sorts first and NaN ranks last (`topk`), so the
table is the same on every machine. Every image of a set must have gone through the same layers
with the same map shapes: one model at one img_size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from .activations import Activations
from .files import read_tsv, write_tsv
from .stats import Peaks, peaks
from .receptive import Field
from .topk import top_indices

FILENAME = "top_images.tsv"
COLUMNS = (
    "layer", "filter", "by", "rank", "image", "value", "y", "x",
    "top", "left", "bottom", "right", "whole",
)  # fmt: skip
MEASURES = ("mean", "max")


class SetError(ValueError):
    """Images that do not form a set (other layers or shapes), or fields for another input."""


@dataclass(frozen=True)
class ImageSet:
    """The per-image summaries of a set, as the set step reads them."""

    images: list[str]  # in the order given
    layers: list[dict[str, str]]  # layers.tsv rows (network order), equal for every image
    peaks: dict[str, dict[str, Peaks]]  # image -> layer -> Peaks
    folders: dict[str, Path]  # image -> its activations folder

    def values(self, layer: str, by: str) -> np.ndarray:
        """N images x C filters of `by` (mean or max), images in `images` order."""
        return np.stack([getattr(self.peaks[image][layer], by) for image in self.images])

    def input_png(self, image: str) -> Path:
        return self.folders[image] / "input.png"


def load_set(folders: Mapping[str, str | Path]) -> ImageSet:
    """image name -> activations folder, for every image of the set."""
    if not folders:
        raise SetError("an image set needs at least one image")
    layers, summaries, first = None, {}, None
    for image, folder in folders.items():
        acts = Activations(folder)
        rows = [{"layer": m.name, "channels": str(m.channels), "height": str(m.height),
                 "width": str(m.width)} for m in acts.layers]  # fmt: skip
        if layers is None:
            layers, first = rows, image
        elif rows != layers:
            raise SetError(_differs(image, rows, first, layers))
        table = peaks(acts.filter_stats())
        for row in rows:
            got = len(table.get(row["layer"], ()))
            if got != int(row["channels"]):
                raise SetError(
                    f"{acts.folder} holds statistics of {got} filters of layer {row['layer']}, "
                    f"layers.tsv {row['channels']}; extract {image} again"
                )
        summaries[image] = table
    return ImageSet(list(folders), layers, summaries, {i: Path(f) for i, f in folders.items()})


def _differs(image, rows, first, layers) -> str:
    for a, b in zip(rows, layers):
        if a != b:
            return (f"image {image} does not fit the set: its layer {a['layer']} is "
                    f"{a['channels']} x {a['height']} x {a['width']}, but {first} has "
                    f"{b['layer']} {b['channels']} x {b['height']} x {b['width']}; a set needs "
                    "one model, one img_size and one layer selection")  # fmt: skip
    return (f"image {image} has {len(rows)} layers and {first} {len(layers)}; a set needs one "
            "model, one img_size and one layer selection")


def check_fields(image_set: ImageSet, fields: Mapping[str, Field], image_size) -> None:
    """Every layer of the set has a field measured for its map size and for `image_size`
    (height, width of input.png)."""
    for row in image_set.layers:
        layer, shape = row["layer"], (int(row["height"]), int(row["width"]))
        field = fields.get(layer)
        if field is None:
            raise SetError(f"the receptive field table has no layer {layer}; measure it again "
                           "for this layer selection")  # fmt: skip
        if field.map_size != shape or field.image_size != tuple(image_size):
            raise SetError(
                f"the receptive field of {layer} was measured for {field.map_size[0]}x"
                f"{field.map_size[1]} maps of {field.image_size[0]}x{field.image_size[1]} inputs, "
                f"the set has {shape[0]}x{shape[1]} maps of {image_size[0]}x{image_size[1]} "
                "inputs; measure it again for this img_size"
            )


def rank_images(image_set: ImageSet, k: int, fields: Mapping[str, Field]) -> list[tuple]:
    """The rows of top_images.tsv: per layer (network order), filter, by mean then max, the
    min(k, N) strongest images."""
    order = np.argsort(np.argsort(np.array(image_set.images, dtype=object), kind="stable"))
    rows = []
    for layer in (row["layer"] for row in image_set.layers):
        field = fields[layer]
        values = {by: image_set.values(layer, by) for by in MEASURES}
        ys, xs = image_set.values(layer, "y"), image_set.values(layer, "x")
        for f in range(values["mean"].shape[1]):
            for by in MEASURES:
                for rank, i in enumerate(top_indices(values[by][:, f], k, order), start=1):
                    y, x = int(ys[i, f]), int(xs[i, f])
                    box = field.box(y, x)
                    rows.append((layer, f, by, rank, image_set.images[i], float(values[by][i, f]),
                                 y, x, *box, int(field.covers(y, x))))  # fmt: skip
    return rows


def write_table(path: str | Path, rows: Iterable[Sequence]) -> None:
    write_tsv(path, COLUMNS, rows)


@dataclass(frozen=True)
class Example:
    """One row of top_images.tsv."""

    layer: str
    filter: int
    by: str
    rank: int
    image: str
    value: float
    y: int
    x: int
    box: tuple[int, int, int, int]  # top, left, bottom, right (ends exclusive), clipped
    whole: bool


def read_table(path: str | Path) -> list[Example]:
    examples = []
    for row in read_tsv(path):
        box = tuple(int(row[c]) for c in ("top", "left", "bottom", "right"))
        examples.append(Example(row["layer"], int(row["filter"]), row["by"], int(row["rank"]),
                                row["image"], float(row["value"]), int(row["y"]), int(row["x"]),
                                box, row["whole"] == "1"))  # fmt: skip
    return examples


def by_filter(examples: Iterable[Example], layer: str, by: str = "max") -> dict[int, list[Example]]:
    """filter -> its examples of `layer` ranked by `by`, strongest first."""
    found: dict[int, list[Example]] = {}
    for e in examples:
        if e.layer == layer and e.by == by:
            found.setdefault(e.filter, []).append(e)
    return {f: sorted(group, key=lambda e: e.rank) for f, group in sorted(found.items())}
