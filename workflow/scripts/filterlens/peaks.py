"""Each filter's mean, maximum and where the maximum lies, per image: the summary a set step ranks
images by, written once beside the maps (peaks.tsv) so that it never has to read them again.

The mean is accumulated in float64 as `stats` does (the same values as activation_stats.tsv);
the position is that of the first maximum in row-major order (np.argmax), so ties and a NaN
(which np.argmax takes for the maximum) give the same cell on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from .files import read_tsv, write_tsv

FILENAME = "peaks.tsv"
COLUMNS = ("layer", "filter", "mean", "max", "y", "x")


class PeaksError(ValueError):
    """A peaks table that is missing or malformed; the message names the file."""


@dataclass(frozen=True)
class Peaks:
    """Per filter of one layer on one image: arrays of length C."""

    mean: np.ndarray  # float64
    max: np.ndarray  # float64 (the float32 maxima, exactly)
    y: np.ndarray  # int64: row of the first maximum
    x: np.ndarray  # int64: column of the first maximum

    def __len__(self) -> int:
        return len(self.mean)


def filter_peaks(a: np.ndarray) -> Peaks:
    """The peaks of every filter of `a`, one layer's C x H x W map."""
    if a.ndim != 3 or 0 in a.shape:
        raise ValueError(f"a layer's map is C x H x W with no empty axis, not {a.shape}")
    flat = a.reshape(a.shape[0], -1)
    where = flat.argmax(1)
    mean = flat.astype(np.float64).mean(1)  # as stats.filter_stats computes it
    high = flat[np.arange(len(flat)), where].astype(np.float64)
    y, x = np.divmod(where.astype(np.int64), a.shape[2])
    return Peaks(mean, high, y, x)


def write_table(path: str | Path, maps: Iterable[tuple[str, np.ndarray]]) -> None:
    """peaks.tsv from (layer, C x H x W map) pairs in network order."""
    write_tsv(path, COLUMNS, (
        (layer, f, float(p.mean[f]), float(p.max[f]), int(p.y[f]), int(p.x[f]))
        for layer, a in maps for p in (filter_peaks(np.asarray(a)),) for f in range(len(p))
    ))  # fmt: skip


def read_table(path: str | Path) -> dict[str, Peaks]:
    """layer -> Peaks, in the table's (network) order."""
    path = Path(path)
    if not path.is_file():
        raise PeaksError(f"{path} is missing: extraction writes it beside the maps; run it again")
    columns: dict[str, list] = {}
    try:
        for row in read_tsv(path):
            cols = columns.setdefault(row["layer"], [[], [], [], [], []])
            for values, key in zip(cols, ("filter", "mean", "max", "y", "x")):
                values.append(row[key])
    except (KeyError, TypeError) as err:
        raise PeaksError(f"{path}: not a peaks table (missing {err}); expected columns "
                         f"{', '.join(COLUMNS)}") from None  # fmt: skip
    table = {}
    for layer, (filters, mean, high, y, x) in columns.items():
        if [int(f) for f in filters] != list(range(len(filters))):
            raise PeaksError(f"{path}: the filters of {layer} are not 0, 1, 2, ... in order")
        table[layer] = Peaks(np.array(mean, np.float64), np.array(high, np.float64),
                             np.array(y, np.int64), np.array(x, np.int64))  # fmt: skip
    return table
