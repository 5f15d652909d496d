"""tools/verify.py: a re-run reproduces a run byte for byte here; slightly perturbed activations
pass within tolerance, grossly perturbed ones and shifted frames fail."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, Workflow, copy_workflow

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


def perturbed_copy(published, tmp_path, factor):
    root = tmp_path / "copy"
    shutil.copytree(published.root, root, ignore=shutil.ignore_patterns(".snakemake"))
    for npy in (root / "results/resnet18/chelsea/activations").glob("*.npy"):
        np.save(npy, (np.load(npy) * factor).astype(np.float32))
    return root


def test_rerun_reproduces_the_run_exactly(published):
    result = verify(published.root / RUN)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "VERIFIED" in result.stdout and "within tolerance" not in result.stdout
    assert "DIFFERS" not in result.stdout


def test_slightly_perturbed_activations_pass_within_tolerance(published, tmp_path):
    root = perturbed_copy(published, tmp_path, 1 + 1e-6)
    result = verify(root / RUN)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "within tolerance: ../activations/conv1.npy" in result.stdout


def test_grossly_perturbed_activations_fail(published, tmp_path):
    root = perturbed_copy(published, tmp_path, 1.5)
    result = verify(root / RUN, "--against", str(published.root / RUN))
    assert result.returncode == 1
    assert "DIFFERS: ../activations/conv1.npy" in result.stdout
    assert "NOT VERIFIED" in result.stdout


def test_frames_more_than_one_level_apart_fail(published, tmp_path):
    root = tmp_path / "frames"
    shutil.copytree(published.root, root, ignore=shutil.ignore_patterns(".snakemake"))
    frame = root / RUN / "frames/conv1/0000.png"
    image = Image.open(frame)
    index = np.asarray(image).astype(np.int64)
    palette = image.getpalette()
    one = Image.fromarray(np.clip(index + 1, 0, 255).astype(np.uint8), mode="P")
    one.putpalette(palette)
    one.save(frame)
    result = verify(root / RUN, "--against", str(published.root / RUN))
    assert "within tolerance: frames/conv1/0000.png" in result.stdout
    two = Image.fromarray(np.clip(index + 3, 0, 255).astype(np.uint8), mode="P")
    two.putpalette(palette)
    two.save(frame)
    result = verify(root / RUN, "--against", str(published.root / RUN))
    assert result.returncode == 1 and "DIFFERS: frames/conv1/0000.png" in result.stdout


def test_one_core_and_two_cores_give_identical_bytes(published, tmp_path):
    single = Workflow(copy_workflow(tmp_path / "single"))
    single.snakemake("--configfile", "tests/configs/tiny.yaml", "--cores", "1")
    manifest = "results/resnet18/chelsea/default/MANIFEST.sha256"
    assert (single.root / manifest).read_text() == (published.root / manifest).read_text()
    extraction = "results/resnet18/chelsea/activations/extraction.json"
    threads = [json.loads((wf.root / extraction).read_text())["threads"] for wf in (single, published)]
    assert threads == [1, 2]  # the extraction really ran with different thread counts
