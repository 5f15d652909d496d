"""The files that make up the workflow, and a scratch copy of them (for tests, the benchmark and
verification re-runs: own .snakemake metadata, own results)."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
WORKFLOW_FILES = (
    "Snakefile",
    "config.yaml",
    "workflow",
    "envs",
    "profiles",
    "resources/images",
    "tests/configs",
)


def copy_workflow(dest: Path, repo: Path = REPO) -> Path:
    """Copy the workflow's files from `repo` into `dest`; return `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        src, target = repo / name, dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, target)
    return dest
