"""Whether a run's outputs still are what the configuration would make, checked at start-up from
what they record about themselves: the settings in scales.tsv, frames/.render.json and
provenance.json, and the sizes in frames.tsv.

Snakemake re-makes an output whose recorded parameters changed, but only where it has a record
of the job (an interrupted run can leave outputs without one), and it does not look inside a
folder output for a file deleted or cut short. These checks close both gaps; an output found
stale is made to look old (files.age), so that Snakemake re-makes it and what follows from it.
Reading a few small records and a stat per frame keeps them cheap; hashing stays in verify.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Mapping

from . import frames
from .normalize import SCALES

# A run's outputs by the step that makes them, relative to the run folder.
NORMALIZED = (SCALES, "equalization.npz")
RENDERED = ("frames", frames.INDEX, "sheets", "top_filters.tsv", "preview.webp")
FINISHED = ("activation_stats.tsv", "activation_stats.txt", "MANIFEST.sha256", "provenance.json")


def run_state(run_dir: str | os.PathLike, settings: Mapping, top_k: int,
              keys: Mapping[str, tuple[str, ...]]) -> tuple[str, str] | None:
    """(first step whose outputs are stale: "normalize", "render" or "finish", why), or None.
    `settings`: the run's keys now; `keys`: which keys each step uses."""
    run_dir = Path(run_dir)
    normalization = _scales_settings(run_dir / SCALES)
    want = {key: settings[key] for key in keys["normalize"]}
    if normalization is not None and normalization != _normalized(want):
        return "normalize", f"{SCALES} was made with other normalization settings"
    if (run_dir / frames.INDEX).exists():
        record = frames.read_record(run_dir)
        want = {"settings": {key: settings[key] for key in keys["render"]}, "top_k": top_k}
        if record != json.loads(json.dumps(want)):
            return "render", "its frames were made with other settings (or have no record)"
        problem = frames.damaged(run_dir)
        if problem:
            return "render", problem
    provenance = run_dir / "provenance.json"
    if provenance.exists():
        try:
            made = json.loads(provenance.read_text())["run_settings"]
        except (OSError, ValueError, KeyError, TypeError):
            return "finish", "provenance.json is unreadable"
        if any(made.get(key) != settings[key] for key in keys["finish"]):
            return "finish", "its video and statistics were made with other settings"
    return None


def stale_outputs(run_dir: str | os.PathLike, step: str, video: str | None) -> list[Path]:
    """What to make look old when `step`'s outputs are stale: those, and every later step's."""
    order = {"normalize": NORMALIZED + RENDERED + FINISHED, "render": RENDERED + FINISHED,
             "finish": FINISHED}  # fmt: skip
    names = order[step] + ((video,) if video else ())
    return [Path(run_dir) / name for name in names if (Path(run_dir) / name).exists()]


def _scales_settings(path: Path) -> dict | None:
    """The normalization settings in the first row of scales.tsv (None: no readable file)."""
    try:
        with open(path, newline="") as fh:
            row = next(csv.DictReader(fh, delimiter="\t"))
        clip = None if row["clip_low"] == "" else [float(row["clip_low"]), float(row["clip_high"])]
        return {"normalization_mode": row["mode"], "clip_percentiles": clip,
                "use_hist_eq": row["equalized"] == "1"}  # fmt: skip
    except (OSError, StopIteration, KeyError, ValueError):
        return None


def _normalized(settings: Mapping) -> dict:
    clip = settings["clip_percentiles"]
    return {**settings, "clip_percentiles": None if clip is None else [float(v) for v in clip]}
