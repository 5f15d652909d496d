"""Trust: a killed job, a killed Snakemake or a full disk never leaves output a re-run would trust.

Every scenario is compared with one uninterrupted run of the same configuration: after the
recovery the README describes, every file under results/ is byte-identical to it (MANIFEST.sha256
included), and nothing half-written (no `.partial` folder, no `.tmp` file) is left.

The configuration renders two layers at 224 x 224; the second (512 filters) takes a few seconds,
which is the window in which the tests strike.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import psutil
import pytest

from conftest import Workflow, copy_workflow

pytestmark = pytest.mark.workflow

FAULT_CONFIG = {
    "layers": ["conv1", "layer4.1.conv2"],
    "max_filters_per_layer": None,
    "img_size": 224,
}
SLOW_LAYER = "layer4.1.conv2"  # 512 filters: rendering takes seconds
RUN = Path("results/resnet18/chelsea/default")
PARTIAL = RUN / ".frames.partial"  # where the run's frames are made before they are renamed
SKIP = {"provenance.json", ".snakemake_timestamp"}  # machine facts and Snakemake's marker


def new_workflow(tmp_path_factory, name: str) -> tuple[Workflow, Path]:
    wf = Workflow(copy_workflow(tmp_path_factory.mktemp(name) / "wf"))
    return wf, wf.write_config(**FAULT_CONFIG)


def extracted_workflow(tmp_path_factory, name: str, done: Path) -> tuple[Workflow, Path]:
    """A copy of the finished reference folder without its run: the activations are there, the
    rendering is all to do (as if the run had been stopped after extraction). Saves the scenarios
    the torch start-up; the activations are not what they test."""
    root = tmp_path_factory.mktemp(name) / "wf"
    shutil.copytree(done, root, symlinks=True)
    shutil.rmtree(root / RUN)
    return Workflow(root), root / "test.yaml"


def snapshot(root: Path) -> dict[str, str]:
    """relative path -> sha256 of every file under results/ (hidden ones included)."""
    files = sorted(p for p in (root / "results").rglob("*") if p.is_file() and p.name not in SKIP)
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files
    }


def assert_manifest_holds(run_dir: Path) -> None:
    """Every line of MANIFEST.sha256 matches its file (what `sha256sum -c` checks)."""
    lines = (run_dir / "MANIFEST.sha256").read_text().splitlines()
    assert lines
    for line in lines:
        digest, rel = line.split("  ", 1)
        assert hashlib.sha256((run_dir / rel).read_bytes()).hexdigest() == digest, rel


def leftovers(root: Path) -> list[str]:
    return [
        p.relative_to(root).as_posix()
        for p in (root / "results").rglob("*")
        if p.name.endswith((".partial", ".tmp"))
    ]


def start(wf: Workflow, *args: str) -> tuple[subprocess.Popen, Path]:
    """Snakemake in its own process group, output to a file (read it after it ends)."""
    log = wf.root.parent / f"snakemake-{time.monotonic_ns()}.out"
    command = [sys.executable, "-m", "snakemake", "--cores", "2", *args]
    with open(log, "w") as out:
        proc = subprocess.Popen(
            command, cwd=wf.root, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return proc, log


def wait_for_frames(proc: subprocess.Popen, folder: Path, count: int, timeout: float = 300) -> None:
    """Wait until `folder` holds at least `count` files: the job is midway."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if len(os.listdir(folder)) >= count:
                return
        except FileNotFoundError:
            pass
        if proc.poll() is not None:
            raise AssertionError(f"snakemake ended ({proc.returncode}) before {folder} filled")
        time.sleep(0.01)
    raise AssertionError(f"{folder} did not reach {count} files in {timeout} s")


def render_process(snakemake_pid: int) -> psutil.Process:
    """The Python process of the run's render job: the one holding its log open."""
    wanted = "logs/render_frames/resnet18/chelsea/default.log"
    for child in psutil.Process(snakemake_pid).children(recursive=True):
        try:
            if any(f.path.endswith(wanted) for f in child.open_files()):
                return child
        except psutil.NoSuchProcess:
            continue
    raise AssertionError("no running render job")


def group_alive(pgid: int) -> list[psutil.Process]:
    alive = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return alive


class Reference(NamedTuple):
    files: dict[str, str]  # relative path -> sha256, as snapshot() gives
    root: Path  # the finished workflow folder


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run every scenario must match, byte for byte."""
    wf, config = new_workflow(tmp_path_factory, "reference")
    wf.snakemake("--configfile", str(config))
    assert_manifest_holds(wf.root / RUN)
    return Reference(snapshot(wf.root), wf.root)


def test_reference_run_is_complete(reference):
    frames = [p for p in reference.files if p.startswith(f"{RUN}/frames/") and p.endswith(".png")]
    assert len(frames) == 64 + 512
    assert f"{RUN}/MANIFEST.sha256" in reference.files
    assert f"{RUN}/activations.avi" in reference.files


def test_killed_render_job_leaves_nothing_trusted_and_rerun_matches(tmp_path_factory, reference):
    wf, config = extracted_workflow(tmp_path_factory, "kill-job", reference.root)
    proc, out = start(wf, "--configfile", str(config))
    try:
        wait_for_frames(proc, wf.root / PARTIAL / SLOW_LAYER, 50)
        render_process(proc.pid).send_signal(signal.SIGKILL)
        assert proc.wait(timeout=300) != 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    text = out.read_text()
    assert "Error in rule render_frames" in text
    # The killed job's frames stay in the hidden partial folder; the frames folder never appeared.
    assert (wf.root / PARTIAL / SLOW_LAYER).is_dir()
    assert not (wf.root / RUN / "frames").exists()
    assert not (wf.root / RUN / "MANIFEST.sha256").exists()
    # A re-run redoes what was missing, never trusting the partial folder.
    assert "render_frames" in wf.dry_run_jobs("--configfile", str(config))
    wf.snakemake("--configfile", str(config), "--rerun-incomplete")
    assert leftovers(wf.root) == []
    assert snapshot(wf.root) == reference.files
    assert_manifest_holds(wf.root / RUN)


def test_killed_snakemake_needs_unlock_then_rerun_matches(tmp_path_factory, reference):
    wf, config = extracted_workflow(tmp_path_factory, "kill-snakemake", reference.root)
    proc, out = start(wf, "--configfile", str(config))
    try:
        wait_for_frames(proc, wf.root / PARTIAL / SLOW_LAYER, 50)
        os.killpg(proc.pid, signal.SIGKILL)  # Snakemake and every job it runs, at once
        assert proc.wait(timeout=60) == -signal.SIGKILL
        deadline = time.monotonic() + 30
        while group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert group_alive(proc.pid) == []
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert not (wf.root / RUN / "frames").exists()
    # Snakemake died holding its lock: the next run refuses until it is removed.
    refused = wf.snakemake("--configfile", str(config), "--rerun-incomplete", check=False)
    assert refused.returncode != 0
    assert "Directory cannot be locked" in refused.stdout + refused.stderr
    wf.snakemake("--configfile", str(config), "--unlock")
    wf.snakemake("--configfile", str(config), "--rerun-incomplete")
    assert leftovers(wf.root) == []
    assert snapshot(wf.root) == reference.files
    assert_manifest_holds(wf.root / RUN)


@pytest.fixture
def small_disk(tmp_path):
    """Mount a 512 KiB tmpfs (as root), remountable larger; skip where mounting is not allowed."""
    mounted: list[Path] = []

    def mount(path: Path, size: str = "512k") -> Path:
        path.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
            capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode != 0:
            pytest.skip(f"cannot mount a small file system here: {done.stderr.strip()}")
        mounted.append(path)
        return path

    yield mount
    for path in reversed(mounted):
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_full_disk_during_rendering_is_a_clear_error_and_rerun_matches(
    tmp_path_factory, reference, small_disk
):
    wf, config = extracted_workflow(tmp_path_factory, "disk-full", reference.root)
    run_dir = small_disk(wf.root / RUN)  # activations fit (elsewhere); the frames do not
    failed = wf.snakemake("--configfile", str(config), check=False)
    assert failed.returncode != 0
    message = (
        f"Error in rule render_frames: no space left on the device while writing {RUN}/frames/"
    )
    assert message in failed.stderr
    assert "Free some space" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert leftovers(wf.root) == []
    assert not (run_dir / "MANIFEST.sha256").exists()
    # The frames folder appears whole or not at all: 576 frames cannot fit in 512 KiB.
    assert not (run_dir / "frames").exists() and not (run_dir / "frames.tsv").exists()
    # With space again, the re-run completes and matches the uninterrupted run.
    subprocess.run(["mount", "-o", "remount,size=64m", str(run_dir)], check=True)
    wf.snakemake("--configfile", str(config), "--rerun-incomplete")
    assert leftovers(wf.root) == []
    assert snapshot(wf.root) == reference.files
