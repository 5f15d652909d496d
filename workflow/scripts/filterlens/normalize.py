"""Scale every filter's raw activations to [0, 1] for rendering, per filter, layer or model.

`compute_scales` finds each filter's [low, high] (min/max, or percentiles when clipping) over the
scope chosen by `normalization_mode`, and, for histogram equalization, the scope's cumulative
histogram. `to_unit` and `equalize` apply them. A 16-bit pixel v inside [low, high] maps back to
the activation low + v / 65535 * (high - low).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MODES = ("filter", "layer", "global")
HIST_BINS = 1024


@dataclass
class Scales:
    low: dict[str, np.ndarray]  # layer -> float64 (C,)
    high: dict[str, np.ndarray]
    cdf: dict[str, np.ndarray] = field(default_factory=dict)  # layer -> (C or 1, HIST_BINS)

    def rows(self):
        for layer, lows in self.low.items():
            for f, (lo, hi) in enumerate(zip(lows.tolist(), self.high[layer].tolist())):
                yield layer, f, lo, hi


def compute_scales(
    maps: dict[str, np.ndarray],
    mode: str,
    clip: tuple[float, float] | None = None,
    hist_eq: bool = False,
) -> Scales:
    """Per-filter [low, high] of `maps` (layer -> C x H x W) over the `mode` scope."""
    if mode not in MODES:
        raise ValueError(f"normalization_mode must be one of {MODES}, not {mode!r}")
    q = (0.0, 100.0) if clip is None else (float(clip[0]), float(clip[1]))
    low, high = {}, {}
    if mode == "global":
        values = np.concatenate([a.ravel() for a in maps.values()])
        lo, hi = _bounds(values, q)
        del values
    for layer, a in maps.items():
        c = a.shape[0]
        if mode == "filter":
            lo_f, hi_f = _bounds(a.reshape(c, -1), q, axis=1)
        elif mode == "layer":
            lo_f, hi_f = (np.full(c, v) for v in _bounds(a, q))
        else:
            lo_f, hi_f = np.full(c, lo), np.full(c, hi)
        low[layer], high[layer] = lo_f.astype(np.float64), hi_f.astype(np.float64)
    scales = Scales(low, high)
    if hist_eq:
        scales.cdf = _cdfs(maps, scales, mode)
    return scales


def _bounds(values: np.ndarray, q: tuple[float, float], axis=None):
    if q == (0.0, 100.0):  # plain min/max: exact and much cheaper than percentiles
        return values.min(axis=axis), values.max(axis=axis)
    lo, hi = np.percentile(values, q, axis=axis)
    return lo, hi


def to_unit(a: np.ndarray, low, high) -> np.ndarray:
    """(a - low) / (high - low) clipped to [0, 1]; a constant scope (high <= low) maps to 0."""
    low = np.asarray(low, dtype=np.float64)
    span = np.asarray(high, dtype=np.float64) - low
    safe = np.where(span > 0, span, 1.0)
    out = (a.astype(np.float64) - _expand(low, a)) / _expand(safe, a)
    out = np.where(_expand(span > 0, a), out, 0.0)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _expand(v: np.ndarray, a: np.ndarray) -> np.ndarray:
    return v.reshape(v.shape + (1,) * (a.ndim - v.ndim)) if v.ndim else v


def _cdfs(maps, scales: Scales, mode: str) -> dict[str, np.ndarray]:
    """Cumulative histograms of the unit-scaled values, one per scope (filter, layer or model)."""
    hists = {}
    for layer, a in maps.items():
        unit = to_unit(a, scales.low[layer], scales.high[layer]).reshape(a.shape[0], -1)
        per_filter = np.stack([np.histogram(u, HIST_BINS, (0.0, 1.0))[0] for u in unit])
        hists[layer] = per_filter if mode == "filter" else per_filter.sum(0, keepdims=True)
    if mode == "global":
        total = sum(hists.values())
        hists = {layer: total for layer in hists}
    return {layer: _cumulative(h) for layer, h in hists.items()}


def _cumulative(hist: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(hist, axis=-1, dtype=np.float64)
    return (cdf / np.maximum(cdf[..., -1:], 1)).astype(np.float32)


def equalize(unit: np.ndarray, cdf_row: np.ndarray) -> np.ndarray:
    """Map unit-scaled values through a scope's cumulative histogram (as scikit-image does)."""
    centers = (np.arange(HIST_BINS, dtype=np.float64) + 0.5) / HIST_BINS
    return np.interp(unit, centers, cdf_row).astype(np.float32)


def from_16bit(value: np.ndarray, low: float, high: float) -> np.ndarray:
    """The activation a 16-bit pixel stands for (without histogram equalization)."""
    return low + value.astype(np.float64) / 65535.0 * (high - low)
