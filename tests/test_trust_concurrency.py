"""Trust: two Snakemake runs in the same folder at once never corrupt each other's results.

What Snakemake really does: it locks *files*, not the folder. At start-up each run records the
outputs of the jobs it will run and the inputs of every job it needs (.snakemake/locks/); a second
run whose outputs meet the first one's outputs or inputs refuses to start ("Directory cannot be
locked"), while a run whose outputs are disjoint starts and runs alongside. `--nolock` skips that
check, so two runs may write the same output at once: never use it to "fix" a refusal.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from conftest import Workflow, copy_workflow

pytestmark = pytest.mark.workflow

IMAGE_DIR = Path("results/resnet18/chelsea")


def start(wf: Workflow, *args: str) -> tuple[subprocess.Popen, Path]:
    log = wf.root.parent / f"snakemake-{time.monotonic_ns()}.out"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "snakemake", "--cores", "2", *args],
            cwd=wf.root, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    return proc, log


def job_holding(proc: subprocess.Popen, log: str, timeout: float = 120) -> psutil.Process:
    """The job process of `proc` that has the job log `log` open (wait until there is one)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in psutil.Process(proc.pid).children(recursive=True):
            try:
                if any(f.path.endswith(log) for f in child.open_files()):
                    return child
            except psutil.NoSuchProcess:
                continue
        assert proc.poll() is None, f"snakemake ended before a job opened {log}"
        time.sleep(0.02)
    raise AssertionError(f"no job opened {log}")


def manifest_holds(run_dir: Path) -> bool:
    for line in (run_dir / "MANIFEST.sha256").read_text().splitlines():
        digest, rel = line.split("  ", 1)
        if hashlib.sha256((run_dir / rel).read_bytes()).hexdigest() != digest:
            return False
    return True


def leftovers(root: Path) -> list[str]:
    return [p.name for p in (root / "results").rglob("*") if p.name.endswith((".partial", ".tmp"))]


def beside_frozen_run(wf: Workflow, first: list[str], job_log: str | None, second: list[str]):
    """Start Snakemake with `first` and freeze it (SIGSTOP) midway: once the job writing `job_log`
    runs, or, with `job_log` None, the whole run once it holds its locks (a short job could end
    before it is seen). Run Snakemake with `second` to the end, then let the first finish.

    Returns (second's result, whether the first was still frozen then, first's exit code and output).
    """
    proc, log = start(wf, *first)
    try:
        frozen = job_holding(proc, job_log) if job_log else holding_locks(wf, proc)
        frozen.suspend()
        result = wf.snakemake(*second, check=False)
        unfinished = frozen.status() == psutil.STATUS_STOPPED
        frozen.resume()
        rc = proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return result, unfinished, rc, log.read_text()


def holding_locks(wf: Workflow, proc: subprocess.Popen, timeout: float = 120) -> psutil.Process:
    """The Snakemake process `proc`, once it has written its locks (.snakemake/locks/)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any((wf.root / ".snakemake" / "locks").glob("*")):
            return psutil.Process(proc.pid)
        assert proc.poll() is None, "snakemake ended before it locked anything"
        time.sleep(0.01)
    raise AssertionError("snakemake wrote no lock")


@pytest.fixture(scope="module")
def first_and_refused(tmp_path_factory):
    """Run `a` from scratch; while its extraction job is unfinished (frozen), run `b`, which
    needs the same activations."""
    wf = Workflow(copy_workflow(tmp_path_factory.mktemp("concurrency") / "wf"))
    configs = {name: wf.write_config(f"{name}.yaml", runs={name: {}}) for name in "abcd"}
    second, unfinished, first_rc, first_out = beside_frozen_run(
        wf,
        ["--configfile", str(configs["a"])],
        "logs/extract_activations/resnet18/batch-1-of-1.log",
        ["--configfile", str(configs["b"])],
    )
    return wf, configs, first_rc, first_out, second, unfinished


def test_run_needing_files_another_run_is_making_is_refused(first_and_refused):
    wf, configs, first_rc, first_out, second, unfinished = first_and_refused
    assert unfinished  # the refusal happened while the first run's job was at work
    assert second.returncode != 0
    assert "Directory cannot be locked" in second.stdout + second.stderr
    assert not (wf.root / IMAGE_DIR / "b").exists()
    assert not (wf.root / "logs/render_frames/resnet18/chelsea/b.log").exists()
    # The first run was not disturbed.
    assert first_rc == 0, first_out[-3000:]
    assert manifest_holds(wf.root / IMAGE_DIR / "a")


def own_outputs(run: str) -> str:
    return f"{IMAGE_DIR}/{run}/MANIFEST.sha256"


def test_runs_with_disjoint_outputs_run_at_once_and_match(first_and_refused):
    """With the activations made, runs c and d share only inputs: d runs from start to end while
    run c, holding its locks, is unfinished (frozen)."""
    wf, configs, *_ = first_and_refused
    # each asks for its own run's outputs: the report page of the image is shared by all runs
    fourth, unfinished, third_rc, third_out = beside_frozen_run(
        wf,
        ["--configfile", str(configs["c"]), "--", own_outputs("c")],
        None,
        ["--configfile", str(configs["d"]), "--", own_outputs("d")],
    )
    assert unfinished
    assert fourth.returncode == 0, fourth.stderr[-3000:]
    assert third_rc == 0, third_out[-3000:]
    assert "render_frames" in fourth.stderr  # d did its own rendering
    # Same settings under three names: three byte-identical, self-consistent results.
    manifests = {run: (wf.root / IMAGE_DIR / run / "MANIFEST.sha256").read_bytes() for run in "acd"}
    assert manifests["c"] == manifests["a"] and manifests["d"] == manifests["a"]
    for run in "acd":
        assert manifest_holds(wf.root / IMAGE_DIR / run)
    assert leftovers(wf.root) == []


def test_nolock_lets_a_second_run_make_the_same_files_at_once(tmp_path_factory):
    """Why --nolock is not a fix: nothing stops a second run making what the first is making.

    The first run's extraction job is frozen (SIGSTOP) midway, so the second run certainly starts
    while that job is unfinished.
    """
    wf = Workflow(copy_workflow(tmp_path_factory.mktemp("nolock") / "wf"))
    config = wf.write_config()
    first, first_log = start(wf, "--configfile", str(config))
    try:
        job = job_holding(first, "logs/extract_activations/resnet18/batch-1-of-1.log")
        job.suspend()
        second = wf.snakemake(
            f"{IMAGE_DIR}/activations", "--nolock", "--configfile", str(config), check=False
        )
        # The first run's job was unfinished throughout.
        assert job.status() == psutil.STATUS_STOPPED
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=60)
    out = second.stdout + second.stderr
    assert second.returncode == 0, out[-3000:]
    assert "Directory cannot be locked" not in out
    assert "rule extract_activations_resnet18_1_of_1:" in out  # the very job the first run was in
    assert f"output: {IMAGE_DIR}/activations" in out
