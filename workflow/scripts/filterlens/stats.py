"""Per-filter statistics of raw activations: min, max, mean, population std (ddof=0), and where
the maximum is.

Extraction computes them once per model and image, while the maps are in memory, into the
activations folder's filter_stats.tsv; each run's activation_stats.tsv is that same table and
activation_stats.txt its readable form.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from .files import read_tsv, write_text, write_tsv

FILTER_STATS = "filter_stats.tsv"
COLUMNS = ("layer", "filter", "min", "max", "mean", "std", "max_y", "max_x")


class StatisticsError(ValueError):
    """Statistics that are not numbers: the maps hold NaN or Inf."""


@dataclass(frozen=True)
class FilterStats:
    layer: str
    filter: int
    min: float
    max: float
    mean: float
    std: float
    max_y: int  # position of the maximum in the layer's map, first in row-major order
    max_x: int

    def row(self) -> tuple:
        return (self.layer, self.filter, self.min, self.max, self.mean, self.std, self.max_y,
                self.max_x)  # fmt: skip


@dataclass(frozen=True)
class Peaks:
    """Per filter of one layer on one image, as arrays of length C: what a set is ranked by."""

    mean: np.ndarray  # float64
    max: np.ndarray  # float64 (the float32 maxima, exactly)
    y: np.ndarray  # int64: row of the first maximum
    x: np.ndarray  # int64: column of the first maximum

    def __len__(self) -> int:
        return len(self.mean)


def peaks(rows: Iterable[FilterStats]) -> dict[str, Peaks]:
    """layer -> Peaks, in the rows' (network) order."""
    layers: dict[str, list[FilterStats]] = {}
    for row in rows:
        layers.setdefault(row.layer, []).append(row)
    return {
        layer: Peaks(np.array([r.mean for r in group], np.float64),
                     np.array([r.max for r in group], np.float64),
                     np.array([r.max_y for r in group], np.int64),
                     np.array([r.max_x for r in group], np.int64))
        for layer, group in layers.items()
    }  # fmt: skip


def filter_stats(layer: str, a: np.ndarray) -> list[FilterStats]:
    """One row per filter of `a` (C x H x W), accumulated in float64."""
    c, h, w = a.shape
    flat = np.asarray(a).reshape(c, -1).astype(np.float64)
    if not np.isfinite(flat).all():
        raise StatisticsError(
            f"layer {layer}: the activations hold NaN or Inf, so no statistics can be computed"
        )
    where = flat.argmax(axis=1)  # first maximum in row-major order
    return [
        FilterStats(layer, f, float(lo), float(hi), float(mean), float(std), int(i // w), int(i % w))
        for f, (lo, hi, mean, std, i) in enumerate(
            zip(flat.min(1), flat.max(1), flat.mean(1), flat.std(1), where)
        )
    ]


def write_filter_stats(path: str | os.PathLike, rows: Iterable[FilterStats]) -> None:
    rows = list(rows)
    bad = [r for r in rows if not all(map(math.isfinite, (r.min, r.max, r.mean, r.std)))]
    if bad:
        raise StatisticsError(f"layer {bad[0].layer}: statistics hold NaN or Inf; not written")
    write_tsv(path, COLUMNS, (r.row() for r in rows))


def read_filter_stats(path: str | os.PathLike) -> list[FilterStats]:
    return [
        FilterStats(r["layer"], int(r["filter"]), float(r["min"]), float(r["max"]),
                    float(r["mean"]), float(r["std"]), int(r["max_y"]), int(r["max_x"]))
        for r in read_tsv(path)
    ]  # fmt: skip


def write_run_stats(table: str | os.PathLike, text: str | os.PathLike, rows: list[FilterStats]) -> str:
    """A run's activation_stats.tsv and .txt; returns the text (for show_raw_stats)."""
    readable = format_text(rows)
    write_filter_stats(table, rows)
    write_text(text, readable)
    return readable


def format_text(rows: list[FilterStats]) -> str:
    """The human-readable table of activation_stats.txt."""
    width = max([len("layer")] + [len(r.layer) for r in rows])
    head = f"{'layer':<{width}}  {'filter':>6}  {'min':>12}  {'max':>12}  {'mean':>12}  {'std':>12}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r.layer:<{width}}  {r.filter:>6}  {r.min:>12.6g}  {r.max:>12.6g}  {r.mean:>12.6g}"
            f"  {r.std:>12.6g}"
        )
    return "\n".join(lines) + "\n"
