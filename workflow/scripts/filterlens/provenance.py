"""What a run's MANIFEST.sha256 covers, and the provenance recorded beside it.

The manifest lists the data outputs (frames, video, statistics, activations) with relative paths,
sorted, in sha256sum format. Provenance (versions, hardware, threads, weights, resolved config)
stays outside it: it differs between machines that produce the same data.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Mapping

from . import __version__
from .checkout import REPO
from .files import sha256_file, write_text

PACKAGES = ("torch", "torchvision", "numpy", "pillow", "matplotlib", "imageio-ffmpeg", "snakemake")


def manifest_lines(run_dir: Path, files: list[Path]) -> list[str]:
    """sha256sum lines for `files`, paths relative to `run_dir`, sorted by path."""
    entries = sorted((os.path.relpath(f, run_dir), f) for f in files)
    return [f"{sha256_file(f)}  {rel}" for rel, f in entries]


def record(model: str, image: str, run: str, extraction: Mapping, config: Mapping,
           settings: Mapping) -> dict:
    """What provenance.json states: the software, the machine and the settings that made a run.
    `extraction` is the activations folder's record (extraction.json)."""
    from .video import ffmpeg_version  # noqa: PLC0415

    return {
        "model": model,
        "image": image,
        "run": run,
        "versions": {**versions(), "ffmpeg": ffmpeg_version()},
        "git_revision": git_revision(REPO),
        "cpu": cpu_model(),
        "device": extraction["device_name"],
        "threads": extraction["threads"],
        "weights": extraction["weights"],
        "config": dict(config),
        "run_settings": dict(settings),
    }


def write(path: str | os.PathLike, record: Mapping) -> None:
    write_text(path, json.dumps(record, indent=2, sort_keys=True) + "\n")


def versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "filterlens": __version__}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


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


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
