"""Verify a published run: its files against its own manifest, then against a second run of it.

1. Each folder (the published run, and the run it is compared with) must be as its manifest
   says: every file of MANIFEST.sha256 present with that SHA-256, every output the run's own tables
   name (manifest.run_outputs) listed, and no other file beside them (manifest.NON_DATA excepted).
2. The two runs are compared file by file. Where their provenance records the same software stack
   (versions, workflow code, device, CPU model and instruction-set features) every file must be
   byte-identical. Otherwise float results may differ in the last bits (oneDNN picks kernels by
   instruction set), and the stated tolerances apply: activations and statistics within `rtol` of
   the layer's largest magnitude; frames and video frames at most one level apart (palette index,
   gray level, or one colormap step for RGB frames) in at most `max_changed` of their pixels;
   predictions within rtol; everything else exact (input.png: the same pixels).

Why a bound on changed pixels: an activation that moves in its last bits crosses a quantization
step only when it lies that close to one, so across CPUs a level changes in a few pixels in ten
thousand; a shift of every pixel by one level is a different picture. The default, 0.1% of all
frame pixels and of each frame's pixels (at least one map value's pixels: an upsampled 7x7 map
changes 2% of its frame per value), leaves room for that and refuses systematic changes. A 16-bit
frame has 257 times as many levels per unit of activation, so its bound is 257 times larger.
"""

from __future__ import annotations

import io
import math
import os
import shutil
import subprocess
import sys
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from . import manifest as mf
from .files import read_tsv, sha256_file
from .provenance import PROVENANCE, Provenance, ProvenanceError, read_provenance, stack_differences
from .video import VideoError, avi_packets

DEFAULT_RTOL = 1e-4
DEFAULT_MAX_CHANGED = 1e-3
PROBABILITY_STEP = 1e-6  # predictions.tsv rounds probabilities to 6 decimals
TEXT_DIGITS = 1e-5  # activation_stats.txt prints 6 significant digits
SHOWN_WITHIN = 20  # "within tolerance" lines listed; every problem is listed
OK = ("identical", "within tolerance")
PIXEL_KINDS = {"frame": "frames", "video": "video frames"}


UNKNOWN = 1 << 62  # map size not known: one pixel per value, no allowance beyond the bound


class VerifyError(Exception):
    """A verification that cannot be carried out (the message says why and what to do)."""


ERRORS = (VerifyError, mf.ManifestError, ProvenanceError, VideoError)


class Unreadable(Exception):
    """A file that cannot be decoded as what its name says."""


READ_ERRORS = (OSError, ValueError, KeyError, IndexError, EOFError, SyntaxError, zlib.error,
               Image.DecompressionBombError, VideoError, Unreadable)  # fmt: skip


@dataclass(frozen=True)
class Tolerances:
    rtol: float = DEFAULT_RTOL
    max_changed: float = DEFAULT_MAX_CHANGED  # fraction of 8-bit frame pixels one level apart


@dataclass
class Problem:
    path: str
    status: str  # MODIFIED | MISSING | NOT IN MANIFEST | NOT AN OUTPUT | ADDED
    detail: str


@dataclass
class Folder:
    """A run folder, read and checked against its own manifest."""

    path: Path
    provenance: Provenance
    manifest: dict[str, str]
    hashes: dict[str, str]  # path -> SHA-256 of the file as found
    values: dict[str, int]  # frame path -> value count of its layer's map (height x width)
    frames: list[str]  # frame paths in frames.tsv (video) order
    problems: list[Problem] = field(default_factory=list)


def open_folder(run_dir: str | os.PathLike) -> Folder:
    """Read `run_dir`'s manifest, provenance and tables; check its files against the manifest."""
    run_dir = Path(run_dir)
    manifest = mf.read_manifest(run_dir)
    provenance = read_provenance(run_dir / PROVENANCE)
    settings = provenance.run_settings
    expected = set(mf.run_outputs(run_dir, settings["video_filename"] if settings["save_video"] else None))
    hashes, problems = {}, []
    for rel, sha in sorted(manifest.items()):
        if rel not in expected:
            problems.append(Problem(rel, "NOT AN OUTPUT", "listed in MANIFEST.sha256, but not an "
                                    "output the run's tables name"))  # fmt: skip
        elif not (run_dir / rel).is_file():
            problems.append(Problem(rel, "MISSING", "listed in MANIFEST.sha256, not in the folder"))
        else:
            hashes[rel] = sha256_file(run_dir / rel)
            if hashes[rel] != sha:
                problems.append(Problem(rel, "MODIFIED", "its SHA-256 is not the one in MANIFEST.sha256"))
    for rel in sorted(expected - set(manifest)):
        where = "" if (run_dir / rel).is_file() else "; not in the folder either"
        problems.append(Problem(rel, "NOT IN MANIFEST", f"an output of the run that MANIFEST.sha256 "
                                f"does not list{where}"))  # fmt: skip
    for rel in sorted(set(mf.folder_files(run_dir)) - set(manifest) - expected):
        problems.append(Problem(rel, "ADDED", "in the folder, not in MANIFEST.sha256, not a known "
                                "non-data file"))  # fmt: skip
    rows = read_tsv(run_dir / mf.INDEX)
    shapes = {r["layer"]: r for r in read_tsv(run_dir / mf.LAYERS)}
    values = {r["path"]: _map_values(shapes.get(r.get("layer"))) for r in rows}
    return Folder(run_dir, provenance, manifest, hashes, values, [r["path"] for r in rows], problems)


def _map_values(shape: dict | None) -> int:
    try:
        return max(1, int(shape["height"]) * int(shape["width"]))
    except (TypeError, KeyError, ValueError):
        return UNKNOWN


@dataclass
class Check:
    path: str
    kind: str  # activations | statistics | predictions | frame | video | image | exact
    status: str  # identical | within tolerance | DIFFERS | UNREADABLE | MISSING | EXTRA
    detail: str = ""


@dataclass
class Pixels:
    """Pixels one level apart over all frames of a kind: at most the bound's share of them, or
    the pixels of one map value (the largest of any frame), whichever is more."""

    bound: float
    changed: int = 0
    total: int = 0
    one_value: int = 0

    @property
    def allowed(self) -> int:
        return max(math.floor(self.bound * self.total), self.one_value)

    @property
    def ok(self) -> bool:
        return self.changed <= self.allowed


@dataclass
class Report:
    published: Folder
    other: Folder | None
    label: str  # what the published run is compared with: "the re-run" or "the other run"
    tolerances: Tolerances
    differences: list[str] = field(default_factory=list)  # of the software stacks; [] = same
    checks: list[Check] = field(default_factory=list)
    pixels: dict[str, Pixels] = field(default_factory=dict)  # "frame" | "video"

    @property
    def exact(self) -> bool:
        return not self.differences

    @property
    def ok(self) -> bool:
        folders = [f for f in (self.published, self.other) if f is not None]
        return (
            self.other is not None
            and not any(f.problems for f in folders)
            and all(c.status in OK for c in self.checks)
            and (self.exact or all(p.ok for p in self.pixels.values()))
        )

    def summary(self) -> str:
        lines = folder_lines("published run", self.published)
        if self.other is None:
            lines.append(f"no comparison with {self.label}: the published folder is not as its "
                         "manifest says")  # fmt: skip
        else:
            lines += folder_lines(self.label, self.other)
            lines += self.comparison_lines()
        lines.append(self.verdict())
        return "\n".join(lines)

    def comparison_lines(self) -> list[str]:
        t = self.tolerances
        if self.exact:
            lines = [f"comparison with {self.label}: exact (same software, device and CPU features "
                     "in both provenance.json records): every file must be byte-identical"]  # fmt: skip
        else:
            lines = [
                f"comparison with {self.label}: within tolerances, as the software stacks differ "
                f"({'; '.join(self.differences)}): activations and statistics within {t.rtol:g} of "
                f"the layer's largest magnitude, frames at most one level apart in at most "
                f"{_percent(self.pixels['frame'].bound)} of their pixels (of each frame and of all; "
                "at least one map value's), everything else exact"
            ]
        lines.append(f"{'kind':12s} {'files':>6s} {'identical':>10s} {'within tol.':>12s} {'differ':>7s}")
        for kind in sorted({c.kind for c in self.checks}):
            group = [c for c in self.checks if c.kind == kind]
            same = sum(c.status == "identical" for c in group)
            close = sum(c.status == "within tolerance" for c in group)
            lines.append(f"{kind:12s} {len(group):6d} {same:10d} {close:12d} {len(group) - same - close:7d}")
        within = [c for c in self.checks if c.status == "within tolerance"]
        for c in within[:SHOWN_WITHIN]:
            lines.append(f"  within tolerance: {c.path} {c.detail}".rstrip())
        if len(within) > SHOWN_WITHIN:
            lines.append(f"  ... and {len(within) - SHOWN_WITHIN} more files within tolerance")
        lines += [f"  {c.status}: {c.path} {c.detail}".rstrip() for c in self.checks if c.status not in OK]
        for kind, p in sorted(self.pixels.items()):
            if p.total and not self.exact:  # the same stack allows no change at all
                status = "within tolerance" if p.ok else "DIFFERS"
                lines.append(f"  {status}: all {PIXEL_KINDS[kind]}: {_share(p.changed, p.total)} "
                             f"changed (at most {p.allowed:,}: {_percent(p.bound)} of them, or "
                             "one map value's)")  # fmt: skip
        return lines

    def verdict(self) -> str:
        if self.ok:
            return "VERIFIED"
        reasons = [f"{len(f.problems)} file(s) of {name} not as its manifest says"
                   for name, f in (("the published run", self.published), (self.label, self.other))
                   if f is not None and f.problems]  # fmt: skip
        bad = [c for c in self.checks if c.status not in OK]
        if bad:
            reasons.append(f"{len(bad)} file(s) differ from {self.label}")
        if not self.exact:
            reasons += [f"too many pixels of the {PIXEL_KINDS[k]} changed"
                        for k, p in self.pixels.items() if not p.ok]  # fmt: skip
        if self.other is None:
            reasons.append(f"not compared with {self.label}")
        return f"NOT VERIFIED: {'; '.join(reasons)}"


def folder_lines(name: str, folder: Folder) -> list[str]:
    count = len(folder.manifest)
    if not folder.problems:
        return [f"{name} ({folder.path}): all {count} files match MANIFEST.sha256, which lists every "
                "output the run's tables name; no other files"]  # fmt: skip
    tally: dict[str, int] = {}
    for p in folder.problems:
        tally[p.status] = tally.get(p.status, 0) + 1
    counts = ", ".join(f"{n} {status.lower()}" for status, n in tally.items())
    lines = [f"{name} ({folder.path}): not as its MANIFEST.sha256 ({count} files) says: {counts}"]
    return lines + [f"  {p.status}: {p.path} ({p.detail})" for p in folder.problems]


def _share(part: int, whole: int) -> str:
    return f"{part:,} of {whole:,} pixels ({_percent(part / whole)})" if whole else "no pixels"


def _percent(fraction: float) -> str:
    return f"{fraction * 100:.3g}%"


def compare(published: Folder, other: Folder, label: str, tolerances: Tolerances) -> Report:
    """Every file of both manifests, published against other (see the module's docstring)."""
    report = Report(published, other, label, tolerances)
    report.differences = stack_differences(published.provenance, other.provenance)
    frame_bound = pixel_bound(published, tolerances)
    report.pixels = {"frame": Pixels(bound=frame_bound), "video": Pixels(bound=frame_bound)}
    for rel in sorted(set(published.manifest) | set(other.manifest)):
        if (check := compare_file(rel, report)) is not None:
            report.checks.append(check)
    return report


def pixel_bound(folder: Folder, tolerances: Tolerances) -> float:
    """The fraction of a frame's pixels that may be one level apart."""
    levels = 65535 if folder.provenance.run_settings["save_16bit"] else 255
    return min(1.0, tolerances.max_changed * levels / 255)


def compare_file(rel: str, report: Report) -> Check | None:
    """The comparison of one file; None for a file absent from a folder (named among that
    folder's problems already)."""
    a, b = report.published, report.other
    kind = kind_of(rel)
    if rel not in a.manifest:
        return Check(rel, kind, "EXTRA", f"(in the manifest of {report.label}, not in the published one)")
    if rel not in b.manifest:
        return Check(rel, kind, "MISSING", f"(in the published manifest, not in that of {report.label})")
    if rel not in a.hashes or rel not in b.hashes:
        return None
    if a.hashes[rel] == b.hashes[rel]:
        _count_identical(rel, kind, report)
        return Check(rel, kind, "identical")
    try:
        close, detail = COMPARE[kind](a.path / rel, b.path / rel, rel, report)
    except READ_ERRORS as err:
        return Check(rel, kind, "UNREADABLE", f"({err})")
    if report.exact:
        return Check(rel, kind, "DIFFERS", f"(not byte-identical on the same stack; {detail})")
    return Check(rel, kind, "within tolerance" if close else "DIFFERS", f"({detail})")


def _count_identical(rel: str, kind: str, report: Report) -> None:
    """Identical frames count in the pixel totals (their size read from the PNG header)."""
    if kind == "frame":
        try:
            w, h = Image.open(report.published.path / rel).size
        except READ_ERRORS:
            return
        report.pixels["frame"].total += w * h


def kind_of(rel: str) -> str:
    name = os.path.basename(rel)
    if rel.startswith(f"{mf.ACTIVATIONS}/"):
        return {"input.png": "image", "predictions.tsv": "predictions"}.get(
            name, "activations" if name.endswith(".npy") else "exact"
        )
    if name in mf.STATISTICS:
        return "statistics"
    if rel.startswith("frames/") and name.endswith(".png"):
        return "frame"
    if name.endswith(".avi"):
        return "video"
    return "exact"


def close_arrays(a: Path, b: Path, _rel, report: Report) -> tuple[bool, str]:
    x, y = (_read(p, lambda p: np.load(p, allow_pickle=False)).astype(np.float64) for p in (a, b))
    if x.shape != y.shape:
        return False, f"shape {x.shape} vs {y.shape}"
    err = _relative(x, y)
    rtol = report.tolerances.rtol
    return err <= rtol, f"max relative difference {err:.3g} (tolerance {rtol:g})"


def _relative(x: np.ndarray, y: np.ndarray) -> float:
    scale = max(np.abs(x).max(initial=0.0), np.abs(y).max(initial=0.0), np.finfo(np.float32).tiny)
    return float(np.abs(x - y).max(initial=0.0) / scale)


def close_stats(a: Path, b: Path, rel, report: Report) -> tuple[bool, str]:
    """Per-filter statistics; each layer's values against that layer's largest magnitude."""
    ra, rb = _read(a, stat_rows), _read(b, stat_rows)
    if [key for key, _ in ra] != [key for key, _ in rb]:
        return False, "different layers or filters"
    rtol = report.tolerances.rtol + (TEXT_DIGITS if rel.endswith(".txt") else 0.0)
    worst = 0.0
    for layer in dict.fromkeys(key[0] for key, _ in ra):
        x = np.array([v for key, v in ra if key[0] == layer])
        y = np.array([v for key, v in rb if key[0] == layer])
        worst = max(worst, _relative(x, y))
    return worst <= rtol, f"max relative difference {worst:.3g} (tolerance {rtol:g})"


def stat_rows(path: Path) -> list[tuple[tuple[str, str], list[float]]]:
    """((layer, filter), [min, max, mean, std]) of activation_stats.tsv or .txt."""
    if path.suffix == ".tsv":
        return [((r["layer"], r["filter"]), [float(r[c]) for c in ("min", "max", "mean", "std")])
                for r in read_tsv(path)]  # fmt: skip
    rows = []
    for line in path.read_text().splitlines()[2:]:  # a header and a rule
        layer, f, *values = line.split()
        if len(values) != 4:
            raise Unreadable(f"{path}: line '{line}' is not layer, filter and four values")
        rows.append(((layer, f), [float(v) for v in values]))
    return rows


def close_predictions(a: Path, b: Path, _rel, report: Report) -> tuple[bool, str]:
    ra, rb = _read(a, read_tsv), _read(b, read_tsv)
    if [(r["rank"], r["class"]) for r in ra] != [(r["rank"], r["class"]) for r in rb]:
        return False, "different classes"
    pa, pb = (np.array([float(r["probability"]) for r in rows]) for rows in (ra, rb))
    err = float(np.abs(pa - pb).max(initial=0.0))
    limit = report.tolerances.rtol * max(pa.max(initial=0.0), pb.max(initial=0.0)) + PROBABILITY_STEP
    return err <= limit, f"probabilities differ by up to {err:.3g} (tolerance {limit:.3g})"


def close_image(a: Path, b: Path, _rel, _report) -> tuple[bool, str]:
    x, y = _read(a, _pixels), _read(b, _pixels)
    same = x.shape == y.shape and bool((x == y).all())
    return same, "same pixels" if same else "different pixels"


def close_frames(a: Path, b: Path, rel, report: Report) -> tuple[bool, str]:
    x, y = _read(a, _pixels), _read(b, _pixels)
    return _frame_within(x, y, report.published.values.get(rel, UNKNOWN), report, "frame")


def close_video(a: Path, b: Path, _rel, report: Report) -> tuple[bool, str]:
    """Frame by frame: the AVI's packets are the PNG frames, in frames.tsv order."""
    pa, pb = avi_packets(a), avi_packets(b)
    if len(pa) != len(pb):
        return False, f"{len(pa)} vs {len(pb)} frames"
    order = report.published.frames
    ok, worst = True, ""
    for i, (xa, xb) in enumerate(zip(pa, pb)):
        x = _read(f"{a} frame {i}", lambda _: _pixels(io.BytesIO(xa)))
        y = x if xa == xb else _read(f"{b} frame {i}", lambda _: _pixels(io.BytesIO(xb)))
        values = report.published.values.get(order[i], UNKNOWN) if i < len(order) else UNKNOWN
        close, detail = _frame_within(x, y, values, report, "video")
        if not close and ok:
            ok, worst = False, f"frame {i}: {detail}"
    return ok, worst or f"{len(pa)} frames, each within tolerance"


def _frame_within(x, y, values: int, report: Report, kind: str) -> tuple[bool, str]:
    """At most one level apart, in at most the bound's share of the pixels or the pixels of one
    of the map's `values` (height x width), whichever is more."""
    if x.shape != y.shape:
        return False, f"size {x.shape} vs {y.shape}"
    pixels = x.shape[0] * x.shape[1]
    changed_at = x != y if x.ndim == 2 else (x != y).any(axis=2)
    changed, diff = int(changed_at.sum()), int(np.abs(x - y).max(initial=0))
    step = _rgb_step(report.published.provenance.run_settings["cmap"]) if x.ndim == 3 else 1
    totals = report.pixels[kind]
    one_value = math.ceil(pixels / values)
    totals.changed, totals.total = totals.changed + changed, totals.total + pixels
    totals.one_value = max(totals.one_value, one_value)
    allowed = max(math.floor(totals.bound * pixels), one_value)
    detail = f"{changed:,} of {pixels:,} pixels changed, by up to {diff} level(s)"
    if report.exact:
        return False, detail
    return diff <= step and changed <= allowed, f"{detail}; at most {allowed:,} pixels, {step} level(s)"


@lru_cache(maxsize=8)
def _rgb_step(cmap: str) -> int:
    """One colormap level in an RGB frame: the largest channel step between neighbouring colors."""
    from .render import palette  # noqa: PLC0415 - matplotlib only for RGB frames

    return int(np.abs(np.diff(palette(cmap).astype(np.int64), axis=0)).max()) + 1


def _pixels(source) -> np.ndarray:
    with Image.open(source) as image:
        image.load()
        return np.asarray(image).astype(np.int64)


def _read(path, loader: Callable):
    try:
        return loader(path)
    except READ_ERRORS as err:
        raise Unreadable(f"{path} cannot be read: {err}") from None


def _exact(_a, _b, _rel, _report) -> tuple[bool, str]:
    return False, "content differs"


COMPARE = {
    "activations": close_arrays,
    "statistics": close_stats,
    "predictions": close_predictions,
    "image": close_image,
    "frame": close_frames,
    "video": close_video,
    "exact": _exact,
}


def verify(
    published: str | os.PathLike,
    against: str | os.PathLike | None = None,
    scratch: str | os.PathLike | None = None,
    tolerances: Tolerances = Tolerances(),
    cores: int = 2,
) -> Report:
    """Check `published` against its manifest, then compare it with the run folder `against`, or
    (without it) with a re-run made in `scratch`. The re-run is skipped when the published folder
    already fails its manifest."""
    folder = open_folder(published)
    if against is not None:
        return compare(folder, open_folder(against), "the other run", tolerances)
    if folder.problems:
        return Report(folder, None, "a re-run", tolerances)
    return compare(folder, open_folder(rerun(folder, Path(scratch), cores)), "the re-run", tolerances)


def rerun_config(folder: Folder) -> tuple[dict, Path]:
    """The configuration that made the run in `folder` (results/<model>/<image>/<run>), with its
    input paths made absolute, and the root of the published tree."""
    p = folder.provenance
    parents = folder.path.resolve().parents
    if len(parents) < 4 or parents[2].name != "results":
        raise VerifyError(
            f"{folder.path} is not a folder results/<model>/<image>/<run> of a published tree, so "
            "its inputs cannot be found for a re-run; compare with another run folder (--against)"
        )
    root = parents[3]
    config = dict(p.config)
    model, image = config.pop("model", None), config.pop("image", None)
    if not (isinstance(model, str) and isinstance(image, str) and "weights" in config):
        raise ProvenanceError(f"{p.path}: config lacks model, image or weights; it cannot be re-run")
    config["models"] = [model]
    config["images"] = {p.image: _input_file(root, image, "image", p)}
    if config["weights"] not in ("imagenet", "random"):
        config["weights"] = _input_file(root, config["weights"], "weights", p)
    config["runs"] = {p.run: p.run_settings}
    return config, root


def _input_file(root: Path, rel: str, key: str, p: Provenance) -> str:
    """An input of the published run, which the re-run reads from the published tree."""
    path = root / rel
    if not path.is_file():
        raise VerifyError(
            f"the re-run needs {path} (config '{key}' in {p.path}), which is not there: put the "
            "file there, or compare with another run folder (--against)"
        )
    return str(path.resolve())


def rerun(folder: Folder, scratch: Path, cores: int) -> Path:
    """Run the workflow of this checkout in `scratch` with the configuration that made `folder`;
    the re-run's run folder."""
    import yaml  # noqa: PLC0415

    from .checkout import copy_workflow  # noqa: PLC0415

    config, root = rerun_config(folder)
    copy_workflow(scratch)
    published_weights = root / "resources" / "weights"
    if config["weights"] == "imagenet" and published_weights.is_dir():
        shutil.copytree(published_weights, scratch / "resources" / "weights")
    (scratch / "verify.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    command = [sys.executable, "-m", "snakemake", "--cores", str(cores), "--quiet", "all",
               "--configfile", "verify.yaml"]  # fmt: skip
    result = subprocess.run(command, cwd=scratch, capture_output=True, text=True)
    if result.returncode != 0:
        output = f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
        raise VerifyError(f"the re-run in {scratch} failed:\n{output}")
    p = folder.provenance
    return scratch / "results" / p.model / p.image / p.run
