"""Per-filter statistics of raw activations: min, max, mean and population std (ddof=0)."""

from __future__ import annotations

import numpy as np

COLUMNS = ("layer", "filter", "min", "max", "mean", "std")


def filter_stats(layer: str, a: np.ndarray) -> list[tuple]:
    """One row per filter of `a` (C x H x W), accumulated in float64."""
    flat = a.reshape(a.shape[0], -1).astype(np.float64)
    return [
        (layer, f, float(lo), float(hi), float(mean), float(std))
        for f, (lo, hi, mean, std) in enumerate(
            zip(flat.min(1), flat.max(1), flat.mean(1), flat.std(1))
        )
    ]


def format_text(rows: list[tuple]) -> str:
    """The human-readable table of activation_stats.txt."""
    width = max([len("layer")] + [len(r[0]) for r in rows])
    head = f"{'layer':<{width}}  {'filter':>6}  {'min':>12}  {'max':>12}  {'mean':>12}  {'std':>12}"
    lines = [head, "-" * len(head)]
    for layer, f, lo, hi, mean, std in rows:
        lines.append(f"{layer:<{width}}  {f:>6}  {lo:>12.6g}  {hi:>12.6g}  {mean:>12.6g}  {std:>12.6g}")
    return "\n".join(lines) + "\n"
