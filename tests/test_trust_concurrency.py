"""Trust: two Snakemake runs in the same folder at once never corrupt each other's results.

What Snakemake really does: it locks *files*, not the folder. At start-up each run records the
outputs of the jobs it will run and the inputs of every job it needs (.snakemake/locks/); a second
run whose outputs meet the first one's outputs or inputs refuses to start ("Directory cannot be
locked"), while a run whose outputs are disjoint starts and runs alongside. `--nolock` skips that
check, so two runs may write the same output at once: never use it to "fix" a refusal.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import Workflow, copy_workflow

pytestmark = pytest.mark.workflow

IMAGE_DIR = Path("results/resnet18/chelsea")


def start(wf: Workflow, *args: str) -> tuple[subprocess.Popen, Path]:
    log = wf.root.parent / f"snakemake-{time.monotonic_ns()}.out"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "snakemake", "--cores", "2", *args],
            cwd=wf.root, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return proc, log


def wait_for_lock(wf: Workflow, proc: subprocess.Popen, timeout: float = 120) -> None:
    locks = wf.root / ".snakemake/locks"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if locks.exists() and any(locks.iterdir()):
            return
        assert proc.poll() is None, "the first run ended before it locked anything"
        time.sleep(0.02)
    raise AssertionError("the first run never locked its files")


def manifest_holds(run_dir: Path) -> bool:
    for line in (run_dir / "MANIFEST.sha256").read_text().splitlines():
        digest, rel = line.split("  ", 1)
        if hashlib.sha256((run_dir / rel).read_bytes()).hexdigest() != digest:
            return False
    return True


def leftovers(root: Path) -> list[str]:
    return [p.name for p in (root / "results").rglob("*") if p.name.endswith((".partial", ".tmp"))]


@pytest.fixture(scope="module")
def first_and_refused(tmp_path_factory):
    """Run `a` from scratch; while it extracts, run `b`, which needs the same activations."""
    wf = Workflow(copy_workflow(tmp_path_factory.mktemp("concurrency") / "wf"))
    configs = {name: wf.write_config(f"{name}.yaml", runs={name: {}}) for name in "abcd"}
    first, first_log = start(wf, "--configfile", str(configs["a"]))
    try:
        wait_for_lock(wf, first)
        second = wf.snakemake("--configfile", str(configs["b"]), check=False)
        still_running = first.poll() is None
    finally:
        first_rc = first.wait(timeout=600)
    return wf, configs, first_rc, first_log.read_text(), second, still_running


def test_run_needing_files_another_run_is_making_is_refused(first_and_refused):
    wf, configs, first_rc, first_out, second, still_running = first_and_refused
    assert still_running  # the refusal happened while the first run was at work
    assert second.returncode != 0
    assert "Directory cannot be locked" in second.stdout + second.stderr
    assert not (wf.root / IMAGE_DIR / "b").exists()
    assert not (wf.root / "logs/render_frames/resnet18/chelsea/b").exists()
    # The first run was not disturbed.
    assert first_rc == 0, first_out[-3000:]
    assert manifest_holds(wf.root / IMAGE_DIR / "a")


def test_runs_with_disjoint_outputs_run_at_once_and_match(first_and_refused):
    """With the activations made, runs c and d share only inputs: both start, side by side."""
    wf, configs, *_ = first_and_refused
    procs = [start(wf, "--configfile", str(configs[name])) for name in "cd"]
    codes = [proc.wait(timeout=600) for proc, _ in procs]
    outputs = [log.read_text() for _, log in procs]
    assert codes == [0, 0], [out[-3000:] for out in outputs]
    for out in outputs:
        assert "Directory cannot be locked" not in out
        assert "render_frames" in out  # each did its own rendering
    # Same settings under three names: three byte-identical, self-consistent results.
    manifests = {run: (wf.root / IMAGE_DIR / run / "MANIFEST.sha256").read_bytes() for run in "acd"}
    assert manifests["c"] == manifests["a"] and manifests["d"] == manifests["a"]
    for run in "acd":
        assert manifest_holds(wf.root / IMAGE_DIR / run)
    assert leftovers(wf.root) == []


def test_nolock_lets_a_second_run_make_the_same_files_at_once(tmp_path_factory):
    """Why --nolock is not a fix: nothing stops two runs writing the same output together."""
    wf = Workflow(copy_workflow(tmp_path_factory.mktemp("nolock") / "wf"))
    config = wf.write_config()
    first, first_log = start(wf, "--configfile", str(config))
    try:
        wait_for_lock(wf, first)
        midway = not (wf.root / IMAGE_DIR / "activations").exists()  # first is still extracting
        second = wf.snakemake("--nolock", "--configfile", str(config), check=False)
    finally:
        first.wait(timeout=600)
    out = second.stdout + second.stderr
    assert midway
    assert "Directory cannot be locked" not in out
    # Both runs ran the extraction job for the same activations folder.
    for text in (first_log.read_text(), out):
        assert "checkpoint extract_activations:" in text
        assert f"output: {IMAGE_DIR}/activations" in text
