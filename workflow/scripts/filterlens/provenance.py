"""provenance.json: what made a run, written beside its MANIFEST.sha256 and read back to verify it.

The record holds what differs between machines that make the same data (so it stays outside the
manifest): package versions, a digest of the workflow's code, the git revision, the CPU model and
its instruction-set features, the device, thread count and weights of the extraction, and the
resolved configuration. This module is the only one that writes or reads the file.

Two records describe the same software stack when versions, workflow code, device, CPU model and
instruction-set features agree: then the workflow's outputs are byte-identical (oneDNN picks its
kernels by instruction set, so other features may change float results in the last bits).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

from . import __version__
from .files import write_text

PROVENANCE = "provenance.json"
PACKAGES = ("torch", "torchvision", "numpy", "pillow", "matplotlib", "imageio-ffmpeg", "snakemake")
# The workflow's code, whose digest stands for "the same workflow" (config.yaml is not code: the
# resolved configuration is recorded in full).
CODE = ("Snakefile", "workflow")
# The /proc/cpuinfo flags that choose kernels: oneDNN's x86 levels (sse41, avx2, avx2_vnni,
# avx512_core[_vnni, _bf16, _fp16], amx) and Arm's (asimd, sve, sme, bf16, i8mm). Per line, since
# the same name means different things (x86 "sme": memory encryption).
ISA_FLAGS = {
    "flags": re.compile(r"sse4_[12]|avx\w*|amx\w*|fma|f16c"),
    "Features": re.compile(r"asimd\w*|sve\w*|sme\w*|bf16|i8mm"),
}


class ProvenanceError(Exception):
    """provenance.json is missing or malformed (the message names the file and the fix)."""


def build_record(
    *,
    model: str,
    image: str,
    run: str,
    config: Mapping[str, Any],
    run_settings: Mapping[str, Any],
    device: str,
    threads: int,
    weights: Mapping[str, Any],
    workflow_dir: str | os.PathLike,
) -> dict:
    """The provenance of one run: the given parts plus the facts of this machine and checkout."""
    from .video import ffmpeg_version  # noqa: PLC0415 - imageio-ffmpeg only where a record is made

    return {
        "model": model,
        "image": image,
        "run": run,
        "versions": {**versions(), "ffmpeg": ffmpeg_version()},
        "workflow_code": code_digest(Path(workflow_dir)),
        "git_revision": git_revision(Path(workflow_dir)),
        "cpu": cpu_model(),
        "cpu_features": cpu_features(),
        "device": device,
        "threads": threads,
        "weights": dict(weights),
        "config": dict(config),
        "run_settings": dict(run_settings),
    }


def write_provenance(target: str | os.PathLike, **parts) -> dict:
    """Build the record from `parts` (the keyword arguments of build_record) and write it to
    `target` atomically; return the record."""
    record = build_record(**parts)
    write_text(target, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record


@dataclass(frozen=True)
class Provenance:
    """A validated provenance.json."""

    path: Path
    model: str
    image: str
    run: str
    versions: dict
    config: dict
    run_settings: dict
    workflow_code: str | None = None
    git_revision: str | None = None
    cpu: str | None = None
    cpu_features: dict | None = None
    device: str | None = None
    threads: int | None = None
    weights: dict | None = None

    @property
    def stack(self) -> dict:
        """What decides the bytes of the outputs; None where the record does not say."""
        isa = (self.cpu_features or {}).get("isa")
        return {
            "versions": self.versions,
            "workflow code": self.workflow_code,
            "device": self.device,
            "CPU": self.cpu,
            "CPU features": None if isa is None else sorted(isa),
        }


REQUIRED = {"model": str, "image": str, "run": str, "versions": dict, "config": dict,
            "run_settings": dict}  # fmt: skip
OPTIONAL = {"workflow_code": str, "git_revision": str, "cpu": str, "cpu_features": dict,
            "device": str, "threads": int, "weights": dict}  # fmt: skip
SETTINGS = {"cmap": str, "save_video": bool, "video_filename": str, "save_16bit": bool}


def read_provenance(path: str | os.PathLike) -> Provenance:
    """The record at `path` (a provenance.json), validated; ProvenanceError when it is missing,
    not JSON, or lacks what a verification needs."""
    path = Path(path)
    fix = "copy the provenance.json that the run wrote beside its MANIFEST.sha256, or make the run again"
    if not path.is_file():
        raise ProvenanceError(f"{path} is missing: it records what made the run; {fix}")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ProvenanceError(f"{path} is not readable JSON ({err}); {fix}") from None
    if not isinstance(record, dict):
        raise ProvenanceError(f"{path} holds no JSON object; {fix}")
    for key, kind in (REQUIRED | OPTIONAL).items():
        value = record.get(key)
        if (key in REQUIRED or value is not None) and not isinstance(value, kind):
            what = "lacks" if value is None else f"has a malformed (not {kind.__name__})"
            raise ProvenanceError(f"{path} {what} key '{key}'; {fix}")
    for key, kind in SETTINGS.items():
        if not isinstance(record["run_settings"].get(key), kind):
            raise ProvenanceError(f"{path}: run_settings lacks '{key}' ({kind.__name__}); {fix}")
    isa = (record.get("cpu_features") or {}).get("isa")
    if isa is not None and not (isinstance(isa, list) and all(isinstance(f, str) for f in isa)):
        raise ProvenanceError(f"{path}: cpu_features.isa is not a list of flags; {fix}")
    fields = {key: record.get(key) for key in REQUIRED | OPTIONAL}
    return Provenance(path=path, **fields)


def stack_differences(a: Provenance, b: Provenance) -> list[str]:
    """What differs between the software stacks of two records ("torch 2.14.1 vs 2.13.0"); an
    entry for anything either record does not state. Empty: the same stack."""
    out = []
    sa, sb = a.stack, b.stack
    for name in sorted(set(sa["versions"]) | set(sb["versions"])):
        va, vb = sa["versions"].get(name), sb["versions"].get(name)
        if va != vb:
            out.append(f"{name} {va or 'not recorded'} vs {vb or 'not recorded'}")
    for key in ("workflow code", "device", "CPU"):
        if sa[key] is None or sb[key] is None:
            out.append(f"{key} not recorded")
        elif sa[key] != sb[key]:
            out.append(f"{key} {sa[key]} vs {sb[key]}")
    fa, fb = sa["CPU features"], sb["CPU features"]
    if fa is None or fb is None:
        out.append("CPU features not recorded")
    elif fa != fb:
        only_a, only_b = sorted(set(fa) - set(fb)), sorted(set(fb) - set(fa))
        out.append(f"CPU features: {' '.join(only_a) or '-'} vs {' '.join(only_b) or '-'}")
    return out


def versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "filterlens": __version__}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def code_digest(workflow_dir: Path) -> str:
    """SHA-256 over the workflow's code files (relative paths and contents, in path order)."""
    files = []
    for name in CODE:
        top = workflow_dir / name
        found = [top] if top.is_file() else sorted(top.rglob("*"))
        files += [f for f in found if f.is_file() and "__pycache__" not in f.parts]
    digest = hashlib.sha256()
    for f in sorted(files, key=lambda f: f.relative_to(workflow_dir).as_posix()):
        digest.update(f.relative_to(workflow_dir).as_posix().encode() + b"\0")
        digest.update(f.read_bytes() + b"\0")
    return digest.hexdigest()


def git_revision(folder: Path) -> str | None:
    """The checkout's revision (-dirty when changed); in the image, the one it was built from."""
    try:
        rev = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return os.environ.get("FILTERLENS_GIT_REVISION")
    if rev.returncode != 0:
        return os.environ.get("FILTERLENS_GIT_REVISION")
    return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_model(cpuinfo: str | None = None) -> str:
    for line in (_cpuinfo() if cpuinfo is None else cpuinfo).splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_features(cpuinfo: str | None = None) -> dict:
    """The instruction-set features that choose kernels, and a digest of all the CPU's flags
    (x86 "flags", Arm "Features"); isa None where the system does not say."""
    text = _cpuinfo() if cpuinfo is None else cpuinfo
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ISA_FLAGS:
            flags = sorted(set(value.split()))
            return {
                "machine": platform.machine(),
                "isa": [f for f in flags if ISA_FLAGS[key.strip()].fullmatch(f)],
                "flags_sha256": hashlib.sha256(" ".join(flags).encode()).hexdigest(),
            }
    return {"machine": platform.machine(), "isa": None, "flags_sha256": None}
