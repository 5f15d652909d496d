"""Trust: nothing goes missing or mixed silently.

A frame deleted or an activations file cut short after a run, outputs made with other settings
that Snakemake has no record of, and runs interrupted (SIGINT as Ctrl-C sends it, SIGTERM,
SIGKILL) while they render or finish with other settings: each time the next run notices it at
start-up (from the sizes and settings the outputs record) and re-makes what is needed, and the
result is byte-identical to the uninterrupted reference run.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from test_trust_faults import (  # noqa: F401 - the reference fixture is used by name
    RUN,
    assert_manifest_holds,
    leftovers,
    new_workflow,
    reference,
    snapshot,
    start,
    wait_for_frames,
)

pytestmark = pytest.mark.workflow

ACTIVATIONS = Path("results/resnet18/chelsea/activations")


def copy_of(tmp_path_factory, name: str, done: Path):
    from conftest import Workflow

    root = tmp_path_factory.mktemp(name) / "wf"
    shutil.copytree(done, root, symlinks=True)
    return Workflow(root), root / "test.yaml"


def test_a_deleted_frame_is_noticed_and_made_again(tmp_path_factory, reference):
    wf, config = copy_of(tmp_path_factory, "deleted-frame", reference.root)
    (wf.root / RUN / "frames/conv1/0007.png").unlink()
    result = wf.snakemake("--configfile", str(config), "-n")
    assert "frames/conv1/0007.png is missing; a run would make it again" in result.stderr
    assert "render_frames" in wf.dry_run_jobs("--configfile", str(config))
    wf.snakemake("--configfile", str(config))
    assert snapshot(wf.root) == reference.files


def test_a_cut_activations_file_is_noticed_and_extracted_again(tmp_path_factory, reference):
    wf, config = copy_of(tmp_path_factory, "cut-activations", reference.root)
    npy = wf.root / ACTIVATIONS / "conv1.npy"
    npy.write_bytes(npy.read_bytes()[:1000])
    result = wf.snakemake("--configfile", str(config), "-n")
    assert f"conv1.npy is 1,000 bytes, {reference_size(reference, npy):,} when it was written" in (
        result.stderr
    )
    assert "extract_activations_resnet18_1_of_1" in wf.dry_run_jobs("--configfile", str(config))
    wf.snakemake("--configfile", str(config))
    assert snapshot(wf.root) == reference.files


def reference_size(reference, path: Path) -> int:
    rel = path.relative_to(path.parents[4])
    return (reference.root / rel).stat().st_size


def test_outputs_made_with_other_settings_and_no_record_are_made_again(
    tmp_path_factory, reference
):
    """As a run that was stopped before Snakemake wrote down what made its outputs leaves them."""
    wf, config = copy_of(tmp_path_factory, "no-record", reference.root)
    wf.snakemake("--configfile", str(config), "--config", "resample=bilinear", "fps=3")
    shutil.rmtree(wf.root / ".snakemake" / "metadata")
    jobs = wf.dry_run_jobs("--configfile", str(config))
    assert {"render_frames", "finish_image"} <= set(jobs), jobs
    wf.snakemake("--configfile", str(config))
    assert snapshot(wf.root) == reference.files


def job_holding(proc, log: str, timeout: float = 300) -> None:
    """Wait until a job of `proc` has the log `log` open."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in psutil.Process(proc.pid).children(recursive=True):
            try:
                if any(f.path.endswith(log) for f in child.open_files()):
                    return
            except psutil.NoSuchProcess:
                continue
        assert proc.poll() is None, f"snakemake ended before a job opened {log}"
        time.sleep(0.01)
    raise AssertionError(f"no job opened {log}")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL],
                         ids=["SIGINT", "SIGTERM", "SIGKILL"])  # fmt: skip
@pytest.mark.parametrize("moment", ["rendering", "finishing"])
def test_an_interrupted_run_with_other_settings_never_mixes_outputs(
    tmp_path_factory, reference, sig, moment
):
    wf, config = copy_of(tmp_path_factory, f"interrupted-{moment}-{sig.name}", reference.root)
    proc, _ = start(wf, "--configfile", str(config), "--config", "resample=bilinear", "fps=3")
    try:
        if moment == "rendering":
            wait_for_frames(proc, wf.root / RUN / ".frames.partial" / "layer4.1.conv2", 50)
        else:
            job_holding(proc, "logs/finish_image/resnet18/chelsea.log")
        os.killpg(proc.pid, sig)  # the whole group, as a terminal's Ctrl-C does
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
    if sig == signal.SIGKILL:
        wf.snakemake("--configfile", str(config), "--unlock")
    # The run is made again with the reference's settings: every output as the reference's.
    wf.snakemake("--configfile", str(config))
    assert leftovers(wf.root) == []
    assert snapshot(wf.root) == reference.files
    assert_manifest_holds(wf.root / RUN)


# --- storage that runs out, in every step --------------------------------------------------

from test_trust_faults import small_disk  # noqa: E402,F401 - a fixture, used by name


def assert_clean_failure(result, step: str, where: str) -> None:
    assert result.returncode != 0
    assert f"Error in rule {step}: no space left on the device while writing {where}" in (
        result.stderr
    ), result.stderr[-3000:]
    assert "Free some space" in result.stderr and "Traceback" not in result.stderr


def test_full_disk_during_extraction_is_a_clear_error(workflow_copy, small_disk):
    wf = workflow_copy
    model_dir = small_disk(wf.root / "results/resnet18", "16k")
    # a file in it: Snakemake's clean-up removes empty folders, and a mount point cannot go
    (model_dir / "keep").write_bytes(b"")
    failed = wf.snakemake("--configfile", "tests/configs/tiny.yaml", check=False)
    assert_clean_failure(failed, "extract_activations_resnet18_1_of_1", "results/resnet18/chelsea/")
    assert leftovers(wf.root) == [] and not (model_dir / "chelsea").exists()
    subprocess.run(["mount", "-o", "remount,size=64m", str(model_dir)], check=True)
    wf.snakemake("--configfile", "tests/configs/tiny.yaml")
    assert_manifest_holds(wf.root / RUN)


def test_full_disk_while_writing_the_video_is_a_clear_error(workflow_copy, small_disk):
    wf = workflow_copy
    tiny = ("--configfile", "tests/configs/tiny.yaml")
    run_dir = small_disk(wf.root / RUN, "1m")
    wf.snakemake(*tiny, "--", f"{RUN}/frames.tsv")  # rendered: the frames fit
    free = os.statvfs(run_dir).f_bavail * os.statvfs(run_dir).f_frsize
    (run_dir / "filler").write_bytes(b"\0" * (free - 8192))  # room for the statistics only
    failed = wf.snakemake(*tiny, check=False)
    assert_clean_failure(failed, "finish_image", f"{RUN}/activations.avi")
    assert leftovers(wf.root) == [] and not (run_dir / "activations.avi").exists()
    assert not (run_dir / "MANIFEST.sha256").exists()
    (run_dir / "filler").unlink()
    wf.snakemake(*tiny)
    assert_manifest_holds(wf.root / RUN)
