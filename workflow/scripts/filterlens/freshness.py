"""Whether a run's outputs still are what the configuration would make, checked at start-up from
what they record about themselves: the settings in scales.tsv, frames/.render.json and
provenance.json, and the sizes in frames.tsv.

Snakemake re-makes an output whose recorded parameters changed, but only where it has a record
of the job (an interrupted run can leave outputs without one), and it does not look inside a
folder output for a file deleted or cut short. These checks close both gaps; an output found
stale is made to look old (files.age), so that Snakemake re-makes it and what follows from it.
Reading a few small records and a stat per frame keeps them cheap; hashing stays in verify.

What is done about stale outputs depends on the command (`invocation`): a run ages them for
good; a dry run, lint or graph ages them only while it plans and gives them their time stamps
back when it ends, so that looking changes nothing; a report refuses to gather them, naming the
keys, since its captions would not describe them.
"""

from __future__ import annotations

import atexit
import contextlib
import csv
import io
import json
import os
import sys
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from . import frames
from .describe import changes
from .files import age, restore_times
from .normalize import SCALES

RUN, LOOK, REPORT = "run", "look", "report"
# Snakemake options under which a command plans or shows the workflow without making outputs.
_LOOKING = ("dryrun", "lint", "list_rules", "list_target_rules", "dag", "rulegraph", "filegraph",
            "d3dag", "summary", "detailed_summary", "list_changes", "unlock", "cleanup_metadata",
            "containerize", "print_compilation", "delete_all_output", "delete_temp_output",
            "touch")  # fmt: skip


class ReportMismatch(ValueError):
    """The report was asked for outputs that the current configuration would not make."""


# A run's outputs by the step that makes them, relative to the run folder.
NORMALIZED = (SCALES, "equalization.npz")
RENDERED = ("frames", frames.INDEX, "sheets", "top_filters.tsv", "preview.webp")
FINISHED = ("activation_stats.tsv", "activation_stats.txt", "MANIFEST.sha256", "provenance.json")


def run_state(run_dir: str | os.PathLike, settings: Mapping, top_k: int,
              keys: Mapping[str, tuple[str, ...]]) -> tuple[str, str] | None:
    """(first step whose outputs are stale: "normalize", "render" or "finish", why), or None.
    `settings`: the run's keys now; `keys`: which keys each step uses. `why` names the keys
    whose recorded value differs."""
    run_dir = Path(run_dir)

    def now(step: str) -> dict:
        return {key: settings[key] for key in keys[step]}

    normalization = _scales_settings(run_dir / SCALES)
    changed = normalization is not None and changes(normalization, _normalized(now("normalize")))
    if changed:
        return "normalize", f"{SCALES} was made with {changed}"
    if (run_dir / frames.INDEX).exists():
        record = frames.read_record(run_dir)
        if not isinstance(record, dict) or not isinstance(record.get("settings"), dict):
            return "render", "its frames have no record of the settings that made them"
        made = {**record["settings"], "top_k": record.get("top_k")}
        changed = changes(made, {**now("render"), "top_k": top_k})
        if changed:
            return "render", f"its frames were made with {changed}"
        problem = frames.damaged(run_dir)
        if problem:
            return "render", problem
    provenance = run_dir / "provenance.json"
    if provenance.exists():
        try:
            made = json.loads(provenance.read_text())["run_settings"]
            made = {key: made.get(key) for key in keys["finish"]}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return "finish", "provenance.json is unreadable"
        changed = changes(made, now("finish"))
        if changed:
            return "finish", f"its video and statistics were made with {changed}"
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


def invocation(argv: Sequence[str]) -> str:
    """RUN, LOOK or REPORT: what the snakemake command line `argv` does with outputs, read with
    Snakemake's own parser (profiles included). A command it cannot read counts as a run."""
    from snakemake import cli  # noqa: PLC0415

    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            _, args = cli.parse_args(list(argv))
    except (Exception, SystemExit):  # noqa: BLE001
        return RUN
    if getattr(args, "report", None):
        return REPORT
    return LOOK if any(getattr(args, name, None) for name in _LOOKING) else RUN


def settle(found: Iterable[tuple[str, str, Sequence[str | os.PathLike]]], mode: str) -> None:
    """Act on the outputs found stale at start-up, each (what, why, its paths), for a command
    of `mode` (module docstring). A report raises ReportMismatch listing them."""
    found = list(found)
    if not found:
        return
    if mode == REPORT:
        lines = [f"  {what}: {why}" for what, why, _ in found[:12]]
        if len(found) > 12:
            lines.append(f"  ... and {len(found) - 12} more")
        raise ReportMismatch(
            "the report would gather outputs that this configuration does not make:\n"
            + "\n".join(lines)
            + "\nGive the report the --config / --configfile options that made them, or run the"
            " workflow with this configuration first."
        )
    action = "making it again" if mode == RUN else "a run would make it again"
    for what, why, _ in found:
        print(f"{what}: {why}; {action}", file=sys.stderr)
    stamps = [stamp for _, _, paths in found for path in paths for stamp in age(path)]
    if mode == LOOK:
        atexit.register(restore_times, stamps)
