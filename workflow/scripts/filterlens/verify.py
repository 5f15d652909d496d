"""Compare a published run with a re-run of it, within stated tolerances.

On the same hardware and software stack outputs are byte-identical. Across CPUs, float results
can differ in the last bits (oneDNN picks kernels by instruction set), which can move a value
across a quantization step. So: activations and the statistics derived from them must agree
within a relative tolerance (of the layer's largest magnitude), frames and video frames within
one quantization level (palette index, gray level, or the colormap's step between neighbouring
levels for RGB frames), and everything else exactly.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from .files import read_tsv, sha256_file

DEFAULT_RTOL = 1e-4
STAT_VALUES = ("min", "max", "mean", "std")


@dataclass
class Check:
    path: str
    kind: str  # activations | statistics | frame | video | exact
    status: str  # identical | within tolerance | DIFFERS | missing
    detail: str = ""


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.status in ("identical", "within tolerance") for c in self.checks)

    def summary(self) -> str:
        lines = [f"{'kind':12s} {'files':>6s} {'identical':>10s} {'within tol.':>12s} {'differ':>7s}"]
        for kind in sorted({c.kind for c in self.checks}):
            group = [c for c in self.checks if c.kind == kind]
            count = {s: sum(c.status == s for c in group) for s in ("identical", "within tolerance")}
            bad = len(group) - sum(count.values())
            lines.append(
                f"{kind:12s} {len(group):6d} {count['identical']:10d} "
                f"{count['within tolerance']:12d} {bad:7d}"
            )
        worst = [c for c in self.checks if c.status not in ("identical",)]
        lines += [f"  {c.status}: {c.path} {c.detail}".rstrip() for c in worst[:20]]
        lines.append("VERIFIED" if self.ok else "NOT VERIFIED")
        return "\n".join(lines)


def manifest_paths(run_dir: Path) -> list[str]:
    lines = (Path(run_dir) / "MANIFEST.sha256").read_text().splitlines()
    return [line.split(None, 1)[1] for line in lines if line.strip()]


def compare_runs(published: Path, rerun: Path, rtol: float = DEFAULT_RTOL, lut=None) -> Report:
    """Check every file of `published`'s manifest against the same file under `rerun`."""
    report = Report()
    for rel in manifest_paths(published):
        a, b = Path(published) / rel, Path(rerun) / rel
        kind = kind_of(rel)
        if not b.exists():
            report.checks.append(Check(rel, kind, "missing", "(not produced by the re-run)"))
        elif sha256_file(a) == sha256_file(b):
            report.checks.append(Check(rel, kind, "identical"))
        else:
            close, detail = COMPARE[kind](a, b, rtol, lut)
            report.checks.append(Check(rel, kind, "within tolerance" if close else "DIFFERS", detail))
    return report


def kind_of(rel: str) -> str:
    name = os.path.basename(rel)
    if name.endswith(".npy"):
        return "activations"
    if name == "activation_stats.tsv":
        return "statistics"
    if name.endswith(".avi"):
        return "video"
    if "frames/" in rel and name.endswith(".png"):
        return "frame"
    return "exact"


def close_arrays(a: Path, b: Path, rtol: float, _lut=None) -> tuple[bool, str]:
    x, y = np.load(a).astype(np.float64), np.load(b).astype(np.float64)
    if x.shape != y.shape:
        return False, f"shape {x.shape} vs {y.shape}"
    scale = max(np.abs(x).max(), np.abs(y).max(), np.finfo(np.float32).tiny)
    err = np.abs(x - y).max() / scale
    return err <= rtol, f"max relative difference {err:.3g} (tolerance {rtol:g})"


def close_stats(a: Path, b: Path, rtol: float, _lut=None) -> tuple[bool, str]:
    rows_a, rows_b = read_tsv(a), read_tsv(b)
    if [(r["layer"], r["filter"]) for r in rows_a] != [(r["layer"], r["filter"]) for r in rows_b]:
        return False, "different layers or filters"
    x = np.array([[float(r[c]) for c in STAT_VALUES] for r in rows_a])
    y = np.array([[float(r[c]) for c in STAT_VALUES] for r in rows_b])
    scale = max(np.abs(x).max(), np.abs(y).max(), np.finfo(np.float32).tiny)
    err = np.abs(x - y).max() / scale
    return err <= rtol, f"max relative difference {err:.3g} (tolerance {rtol:g})"


def close_frames(a: Path, b: Path, _rtol, lut=None) -> tuple[bool, str]:
    x, y = _levels(Image.open(a)), _levels(Image.open(b))
    return _within_one_level(x, y, lut)


def close_video(a: Path, b: Path, _rtol, lut=None) -> tuple[bool, str]:
    """Frame by frame: the AVI's packets are PNG files."""
    frames_a, frames_b = _avi_pngs(a), _avi_pngs(b)
    if len(frames_a) != len(frames_b):
        return False, f"{len(frames_a)} vs {len(frames_b)} frames"
    worst = (True, "")
    for pa, pb in zip(frames_a, frames_b):
        if pa != pb:
            ok, detail = _within_one_level(_levels(_png(pa)), _levels(_png(pb)), lut)
            if not ok:
                return False, detail
            worst = (True, detail)
    return worst


def _png(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def _avi_pngs(path: Path) -> list[bytes]:
    """The PNG packets of a stream-copied AVI, in order (split at PNG signatures)."""
    data = Path(path).read_bytes()
    signature = b"\x89PNG\r\n\x1a\n"
    starts = []
    at = data.find(signature)
    while at != -1:
        starts.append(at)
        at = data.find(signature, at + 1)
    frames = []
    for start in starts:
        end = data.find(b"IEND", start) + 8
        frames.append(data[start:end])
    return frames


def _levels(image: Image.Image) -> np.ndarray:
    """Palette indices, gray levels or RGB values, as integers."""
    return np.asarray(image).astype(np.int64)


def _within_one_level(x: np.ndarray, y: np.ndarray, lut) -> tuple[bool, str]:
    if x.shape != y.shape:
        return False, f"size {x.shape} vs {y.shape}"
    diff = np.abs(x - y).max()
    step = 1
    if x.ndim == 3:  # RGB: one colormap level apart at most
        step = int(np.abs(np.diff(np.asarray(lut, dtype=np.int64), axis=0)).max()) + 1 if lut is not None else 1
    return diff <= step, f"max difference {diff} level(s) (tolerance {step})"


COMPARE = {
    "activations": close_arrays,
    "statistics": close_stats,
    "frame": close_frames,
    "video": close_video,
    "exact": lambda a, b, rtol, lut: (False, "content differs"),
}
