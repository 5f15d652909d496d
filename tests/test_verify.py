"""tools/verify.py on real runs of the tiny config: a re-run reproduces a run byte for byte here
(the same stack: exact comparison); a run published from another CPU passes with slightly
perturbed activations, not with grossly perturbed ones or frames shifted by more than a level;
every frame shifted by one level, or a manifest cut to one line, is not verified."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, Workflow, copy_workflow
from filterlens.manifest import write_manifest

pytestmark = pytest.mark.workflow
RUN = "results/resnet18/chelsea/default"


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Workflow:
    wf = Workflow(copy_workflow(tmp_path_factory.mktemp("published")))
    wf.snakemake("--configfile", "tests/configs/tiny.yaml")
    return wf


def verify(run_dir, *args):
    command = [sys.executable, str(REPO / "tools/verify.py"), str(run_dir), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def published_copy(published, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(published.root, root, ignore=shutil.ignore_patterns(".snakemake"))
    return root


def from_another_cpu(run_dir):
    """Re-sign the run's data (a new manifest) and record other CPU features in its provenance:
    a run published from another machine, so that tolerances apply instead of identity."""
    write_manifest(run_dir, "activations.avi")
    record = json.loads((run_dir / "provenance.json").read_text())
    record["cpu_features"]["isa"] = ["sse4_1", "sse4_2"]
    (run_dir / "provenance.json").write_text(json.dumps(record))


def perturbed_copy(published, tmp_path, factor):
    root = published_copy(published, tmp_path)
    for npy in (root / "results/resnet18/chelsea/activations").glob("*.npy"):
        np.save(npy, (np.load(npy) * factor).astype(np.float32))
    from_another_cpu(root / RUN)
    return root


def shift_frame(frame, levels):
    """Every pixel `levels` up (down where that would pass the top), in place."""
    image = Image.open(frame)
    index = np.asarray(image).astype(np.int64)
    shifted = np.where(index + levels <= 255, index + levels, index - levels).astype(np.uint8)
    out = Image.fromarray(shifted, mode="P")
    out.putpalette(image.getpalette())
    out.save(frame)


def test_rerun_reproduces_the_run_exactly(published):
    result = verify(published.root / RUN)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "VERIFIED"
    assert "comparison with the re-run: exact" in result.stdout
    assert "within tolerance" not in result.stdout and "DIFFERS" not in result.stdout


def test_slightly_perturbed_activations_from_another_cpu_pass(published, tmp_path):
    root = perturbed_copy(published, tmp_path, 1 + 1e-6)
    result = verify(root / RUN)
    assert result.returncode == 0, result.stdout + result.stderr
    comparison = next(line for line in result.stdout.splitlines() if line.startswith("comparison"))
    assert "within tolerances, as the software stacks differ (" in comparison
    assert "CPU features: - vs " in comparison  # sse4_1 sse4_2 claimed; this CPU has more
    assert "within tolerance: ../activations/conv1.npy" in result.stdout


def test_grossly_perturbed_activations_fail(published, tmp_path):
    root = perturbed_copy(published, tmp_path, 1.5)
    result = verify(root / RUN, "--against", str(published.root / RUN))
    assert result.returncode == 1
    assert "DIFFERS: ../activations/conv1.npy" in result.stdout
    assert result.stdout.splitlines()[-1].startswith("NOT VERIFIED")


def test_frames_more_than_one_level_apart_fail(published, tmp_path):
    root = published_copy(published, tmp_path)
    shift_frame(root / RUN / "frames/conv1/0000.png", 3)
    from_another_cpu(root / RUN)
    result = verify(root / RUN, "--against", str(published.root / RUN))
    assert result.returncode == 1 and "DIFFERS: frames/conv1/0000.png" in result.stdout
    assert "by up to 3 level(s); at most" in result.stdout


def test_every_frame_shifted_by_one_level_is_not_verified(published, tmp_path):
    root = published_copy(published, tmp_path)
    frames = sorted((root / RUN / "frames").glob("*/*.png"))
    for frame in frames:
        shift_frame(frame, 1)
    result = verify(root / RUN, "--against", str(published.root / RUN))
    assert result.returncode == 1 and result.stdout.count("MODIFIED: frames/") == len(frames) == 8
    from_another_cpu(root / RUN)  # the manifest rewritten to match, and tolerances claimed
    result = verify(root / RUN, "--against", str(published.root / RUN))
    assert result.returncode == 1 and "MODIFIED" not in result.stdout
    assert "DIFFERS: all frames: 24,576 of 24,576 pixels (100%) changed" in result.stdout
    assert result.stdout.splitlines()[-1].startswith("NOT VERIFIED")


def test_a_manifest_cut_to_one_line_is_not_verified(published, tmp_path):
    root = published_copy(published, tmp_path)
    manifest = root / RUN / "MANIFEST.sha256"
    lines = manifest.read_text().splitlines()
    manifest.write_text(lines[0] + "\n")
    result = verify(root / RUN, "--against", str(published.root / RUN))
    assert result.returncode == 1
    named = [line.split(": ", 1)[1].split(" (")[0] for line in result.stdout.splitlines()
             if line.startswith("  NOT IN MANIFEST: ")]  # fmt: skip
    assert named == [line.split("  ", 1)[1] for line in lines[1:]]  # all 16 others, by name
    assert result.stdout.splitlines()[-1].startswith("NOT VERIFIED")


def test_provenance_records_the_cpu_features(published):
    record = json.loads((published.root / RUN / "provenance.json").read_text())
    assert "avx2" in record["cpu_features"]["isa"] or record["cpu_features"]["machine"] != "x86_64"
    assert len(record["workflow_code"]) == 64


def test_one_core_and_two_cores_give_identical_bytes(published, tmp_path):
    single = Workflow(copy_workflow(tmp_path / "single"))
    single.snakemake("--configfile", "tests/configs/tiny.yaml", "--cores", "1")
    manifest = "results/resnet18/chelsea/default/MANIFEST.sha256"
    assert (single.root / manifest).read_text() == (published.root / manifest).read_text()
    extraction = "results/resnet18/chelsea/activations/extraction.json"
    threads = [json.loads((wf.root / extraction).read_text())["threads"] for wf in (single, published)]
    assert threads == [1, 2]  # the extraction really ran with different thread counts
