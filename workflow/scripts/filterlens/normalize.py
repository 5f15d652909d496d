"""Scale every filter's raw activations to [0, 1] for rendering, per filter, layer or model.

`compute_scales` finds each filter's [low, high] (min/max, or percentiles when clipping) over the
scope chosen by `normalization_mode`, and, for histogram equalization, the scope's cumulative
histogram. `to_unit` and `equalize` apply them. A 16-bit pixel v inside [low, high] maps back to
the activation low + v / 65535 * (high - low).

This module also owns the files a run's normalization passes on: scales.tsv (each filter's range,
with the settings that made it in its last columns) and, with histogram equalization only,
equalization.npz (the curves). Later steps read both back with `read_scales`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .files import atomic_path, read_tsv, write_tsv

MODES = ("filter", "layer", "global")
HIST_BINS = 1024
SCALES = "scales.tsv"
EQUALIZATION = "equalization.npz"
COLUMNS = ("layer", "filter", "low", "high", "mode", "clip_low", "clip_high", "equalized")


@dataclass
class Scales:
    low: dict[str, np.ndarray]  # layer -> float64 (C,)
    high: dict[str, np.ndarray]
    cdf: dict[str, np.ndarray] = field(default_factory=dict)  # layer -> (C or 1, HIST_BINS)
    mode: str = "filter"
    clip: tuple[float, float] | None = None
    hist_eq: bool = False

    def rows(self):
        clip = ("", "") if self.clip is None else self.clip
        for layer, lows in self.low.items():
            for f, (lo, hi) in enumerate(zip(lows.tolist(), self.high[layer].tolist())):
                yield layer, f, lo, hi, self.mode, *clip, int(self.hist_eq)

    def curve(self, layer: str, f: int) -> np.ndarray | None:
        """The equalization curve of filter `f` of `layer` (None without equalization)."""
        if not self.hist_eq:
            return None
        cdf = self.cdf[layer]
        return cdf[f if cdf.shape[0] > 1 else 0]

    def shared(self, layer: str) -> bool:
        """Whether every filter of `layer` has the same range (layer or global scope)."""
        return len(set(self.low[layer].tolist())) == 1 and len(set(self.high[layer].tolist())) == 1


def write_scales(run_dir: str | os.PathLike, scales: Scales) -> None:
    """scales.tsv, and equalization.npz when the scales equalize."""
    run_dir = Path(run_dir)
    write_tsv(run_dir / SCALES, COLUMNS, scales.rows())
    if scales.hist_eq:
        with atomic_path(run_dir / EQUALIZATION) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **scales.cdf)


def read_scales(run_dir: str | os.PathLike) -> Scales:
    run_dir = Path(run_dir)
    rows = read_tsv(run_dir / SCALES)
    low: dict[str, list[float]] = {}
    high: dict[str, list[float]] = {}
    for row in rows:
        low.setdefault(row["layer"], []).append(float(row["low"]))
        high.setdefault(row["layer"], []).append(float(row["high"]))
    first = rows[0]
    clip = None if first["clip_low"] == "" else (float(first["clip_low"]), float(first["clip_high"]))
    hist_eq = first["equalized"] == "1"
    cdf = dict(np.load(run_dir / EQUALIZATION)) if hist_eq else {}
    return Scales(
        {k: np.array(v) for k, v in low.items()}, {k: np.array(v) for k, v in high.items()},
        cdf, first["mode"], clip, hist_eq,
    )  # fmt: skip


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
    clip = None if clip is None else (float(clip[0]), float(clip[1]))
    scales = Scales(low, high, mode=mode, clip=clip, hist_eq=bool(hist_eq))
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
