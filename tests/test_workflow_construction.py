"""Through the real workflow, `weights: imagenet` captures torchvision's pretrained network: seeded
GoogLeNet and Inception-v3 checkpoints, served by a loopback mirror and verified by their SHA-256,
give the maps that torchvision's own builder, handed the same state dict, computes on input.png.
Only contract paths are read (results/<model>/<image>/activations/...), and no run warns."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from conftest import LoopbackServer, Workflow, copy_workflow, random_state, torchvision_built

LAYERS = {
    "googlenet": ["conv1.conv", "inception3a.branch1.conv"],
    "inception_v3": ["Conv2d_1a_3x3.conv", "Mixed_5b.branch1x1.conv"],
}
# Inception-v3 needs at least 75x75 pixels.
SIZE = [96, 80]


def run_each_model(wf: Workflow, **values) -> list:
    """The tiny config with `values`, once per model (each with its own layers)."""
    results = []
    for name, layers in LAYERS.items():
        config = wf.write_config(
            f"{name}.yaml", models=[name], layers=layers, img_size=SIZE, **values
        )
        results.append(wf.snakemake("--configfile", str(config)))
    return results


def warnings_in(wf: Workflow, results: list) -> list[str]:
    """Lines that mention a warning, in Snakemake's output and in the extraction logs."""
    texts = [text for result in results for text in (result.stdout, result.stderr)]
    texts += [log.read_text() for log in (wf.root / "logs/extract_activations").rglob("*.log")]
    return [line for text in texts for line in text.splitlines() if "warning" in line.lower()]


@pytest.fixture(scope="module")
def imagenet_run(tmp_path_factory):
    import torch

    from filterlens import models

    root = tmp_path_factory.mktemp("construction")
    wf = Workflow(copy_workflow(root / "wf"))
    served = root / "served"
    served.mkdir()
    states, sums = {}, []
    for seed, name in enumerate(LAYERS, start=7):
        states[name] = random_state(name, seed=seed)
        filename = models.default_weights(name).url.rsplit("/", 1)[-1]
        torch.save(states[name], served / filename)
        sums.append(f"{hashlib.sha256((served / filename).read_bytes()).hexdigest()}  {filename}\n")
    (wf.root / "site.sha256").write_text("".join(sums))
    with LoopbackServer(served) as server:
        results = run_each_model(
            wf, weights="imagenet", weights_mirror=server.url, allow_http_mirror=True,
            weights_checksums="site.sha256",
        )
    return wf, states, results


@pytest.mark.workflow
def test_imagenet_maps_are_those_of_torchvisions_pretrained_builder(imagenet_run):
    import torch
    from PIL import Image

    from filterlens import images, models

    wf, states, _ = imagenet_run
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # as the extraction job runs
    try:
        for name, layers in LAYERS.items():
            folder = wf.root / "results" / name / "chelsea" / "activations"
            rgb = images.to_model_array(Image.open(folder / "input.png").convert("RGB"))
            reference = torchvision_built(name, states[name])
            expected = models.capture(
                reference, models.to_input(rgb, torch.device("cpu")), layers, 4
            )
            for layer in expected.maps:
                assert np.array_equal(
                    np.load(folder / f"{layer.name}.npy"), layer.array
                ), layer.name
    finally:
        torch.set_num_threads(threads)


@pytest.mark.workflow
def test_the_imagenet_run_prints_no_warning(imagenet_run):
    wf, _, results = imagenet_run
    assert warnings_in(wf, results) == []


@pytest.mark.workflow
def test_a_random_weights_run_prints_no_warning(tmp_path):
    wf = Workflow(copy_workflow(tmp_path / "wf"))
    results = run_each_model(wf, weights="random")
    assert (wf.root / "results/googlenet/chelsea/activations/conv1.conv.npy").is_file()
    assert (wf.root / "results/inception_v3/chelsea/activations/Conv2d_1a_3x3.conv.npy").is_file()
    assert warnings_in(wf, results) == []
