"""The most active filters of each layer, ranked from the per-filter statistics table.

A filter's activity is its mean or its maximum raw activation (filterlens.stats). The table,
top_filters.tsv, is written by the run's render step, which marks the same filters on its sheets. Ranks are
computed per layer, largest first; ties go to the lower filter index and NaN ranks last, so the
table is the same on every machine.
"""

from __future__ import annotations

import os
from typing import Iterable, Sequence

import numpy as np

from .files import read_tsv, write_tsv
from .stats import FilterStats

COLUMNS = ("layer", "by", "rank", "filter", "mean", "max")
MEASURES = ("mean", "max")


def top_indices(values, k: int, order=None) -> np.ndarray:
    """Positions of the k largest `values`, largest first; ties go to the smaller `order` key
    (default: the position), NaN ranks below every number."""
    v = np.asarray(values, dtype=np.float64)
    order = np.arange(v.size) if order is None else np.asarray(order)
    key = np.where(np.isnan(v), -np.inf, v)
    ranked = np.lexsort((order, np.isnan(v), -key))
    return ranked[: max(0, int(k))]


def top_filters(rows: Iterable[FilterStats], k: int) -> list[tuple]:
    """Rows of the top-k table from per-filter statistics: per layer in order of appearance, by
    mean then by max."""
    layers: dict[str, list[FilterStats]] = {}
    for row in rows:
        layers.setdefault(row.layer, []).append(row)
    table = []
    for layer, group in layers.items():
        filters = np.array([r.filter for r in group])
        values = {m: np.array([getattr(r, m) for r in group], dtype=np.float64) for m in MEASURES}
        for by in MEASURES:
            for rank, i in enumerate(top_indices(values[by], k, order=filters), start=1):
                table.append(
                    (layer, by, rank, int(filters[i]), float(values["mean"][i]), float(values["max"][i]))
                )
    return table


def write_top(path: str | os.PathLike, table: list[tuple]) -> None:
    write_tsv(path, COLUMNS, table)


def read_top(path: str | os.PathLike) -> list[dict[str, str]]:
    return read_tsv(path)


def marks(table: Iterable[Sequence]) -> dict[str, dict[str, set[int]]]:
    """layer -> {"mean": filters, "max": filters} from rows of the top-k table."""
    found: dict[str, dict[str, set[int]]] = {}
    for layer, by, _rank, f, *_ in table:
        found.setdefault(layer, {m: set() for m in MEASURES})[by].add(int(f))
    return found
