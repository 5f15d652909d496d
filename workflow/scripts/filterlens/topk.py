"""The most active filters of each layer, ranked from the per-filter statistics table.

A filter's activity is its mean or its maximum raw activation (activation_stats.tsv). Ranks are
computed per layer, largest first; ties go to the lower filter index and NaN ranks last, so the
table is the same on every machine.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np

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


def top_filters(rows: Iterable[Mapping], k: int) -> list[tuple]:
    """Rows of the top-k table from stats rows (dicts with layer, filter, mean, max, as read from
    activation_stats.tsv): per layer in order of appearance, by mean then by max."""
    layers: dict[str, list[Mapping]] = {}
    for row in rows:
        layers.setdefault(row["layer"], []).append(row)
    table = []
    for layer, group in layers.items():
        filters = np.array([int(r["filter"]) for r in group])
        values = {m: np.array([float(r[m]) for r in group]) for m in MEASURES}
        for by in MEASURES:
            for rank, i in enumerate(top_indices(values[by], k, order=filters), start=1):
                table.append(
                    (layer, by, rank, int(filters[i]), float(values["mean"][i]), float(values["max"][i]))
                )
    return table


def marks(rows: Iterable[Mapping]) -> dict[str, dict[str, set[int]]]:
    """layer -> {"mean": filters, "max": filters} from top-k table rows (as read from its TSV)."""
    found: dict[str, dict[str, set[int]]] = {}
    for row in rows:
        found.setdefault(row["layer"], {m: set() for m in MEASURES})[row["by"]].add(int(row["filter"]))
    return found
