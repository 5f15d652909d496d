"""Integration: the real workflow on a tiny config (random weights), its output contract, what
re-runs after a change, and the imagenet download path against a loopback server."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml
from PIL import Image

from conftest import Workflow, copy_workflow
from filterlens.files import read_tsv
from filterlens.normalize import from_16bit
from filterlens.video import decode_frames

pytestmark = pytest.mark.workflow

RUNS = {
    "default": {},
    "data16": {"save_16bit": True, "save_video": False},
    "styled": {"overlay_on_image": True, "show_legend": True, "cmap": "magma", "fps": 2},
    "equalized": {"use_hist_eq": True, "normalization_mode": "layer", "clip_percentiles": [1, 99]},
}
WIDTH, HEIGHT = 64, 48  # tests/configs/tiny.yaml


@pytest.fixture(scope="module")
def done(tmp_path_factory) -> Workflow:
    """One completed run of the tiny config with several runs side by side."""
    wf = Workflow(copy_workflow(tmp_path_factory.mktemp("done")))
    config = wf.write_config(runs=RUNS, show_raw_stats=True)
    wf.snakemake("--configfile", str(config))
    return wf


def frames_of(run_dir):
    return read_tsv(run_dir / "frames.tsv")


def test_contract_files_exist_for_every_run(done):
    for run in RUNS:
        run_dir = done.run_dir(run=run)
        for name in ("frames.tsv", "activation_stats.txt", "activation_stats.tsv", "MANIFEST.sha256"):
            assert (run_dir / name).is_file(), f"{run}/{name}"
        assert (run_dir / "activations.avi").is_file() == (run != "data16")


def test_the_filter_cap_is_recorded_and_equalization_kept_only_where_used(done):
    """max_filters_per_layer 4: layers.tsv keeps the saved count in `channels` and the layer's
    own in `channels_total`; extraction.json records the cap. equalization.npz only with
    use_hist_eq."""
    acts = done.root / "results/resnet18/chelsea/activations"
    rows = read_tsv(acts / "layers.tsv")
    assert [(r["layer"], r["channels"], r["channels_total"]) for r in rows] == [
        ("conv1", "4", "64"), ("layer1.0.conv1", "4", "64"),
    ]  # fmt: skip
    assert list(rows[0])[-1] == "channels_total"
    assert json.loads((acts / "extraction.json").read_text())["max_filters_per_layer"] == 4
    for run, settings in RUNS.items():
        equalized = (done.run_dir(run=run) / "equalization.npz").exists()
        assert equalized == settings.get("use_hist_eq", False), run


def test_frames_tsv_lists_layers_in_network_order_and_filters_by_index(done):
    rows = frames_of(done.run_dir())
    assert list(rows[0]) == ["frame", "layer", "filter", "path", "bytes"]
    assert [(r["layer"], int(r["filter"])) for r in rows] == [
        (layer, f) for layer in ("conv1", "layer1.0.conv1") for f in range(4)
    ]
    assert [int(r["frame"]) for r in rows] == list(range(8))
    for row in rows:
        image = Image.open(done.run_dir() / row["path"])
        assert image.size == (WIDTH, HEIGHT) and image.mode == "P"
        assert (done.run_dir() / row["path"]).stat().st_size == int(row["bytes"])


def test_stats_match_the_saved_activations(done):
    rows = read_tsv(done.run_dir() / "activation_stats.tsv")
    assert list(rows[0])[:6] == ["layer", "filter", "min", "max", "mean", "std"]
    acts = done.root / "results/resnet18/chelsea/activations"
    for row in rows:
        a = np.load(acts / f"{row['layer']}.npy")[int(row["filter"])].astype(np.float64)
        assert float(row["min"]) == a.min() and float(row["max"]) == a.max()
        assert float(row["mean"]) == pytest.approx(a.mean(), rel=1e-12)
        assert float(row["std"]) == pytest.approx(a.std(ddof=0), rel=1e-12)
    text = (done.run_dir() / "activation_stats.txt").read_text()
    assert "layer1.0.conv1" in text and "std" in text.splitlines()[0]
    log = (done.root / "logs/finish_image/resnet18/chelsea.log").read_text()
    assert "raw activation statistics" in log and "layer1.0.conv1" in log  # show_raw_stats


@pytest.mark.parametrize("run", ["default", "styled"])
def test_every_decoded_video_frame_equals_its_png_bit_for_bit(done, run):
    run_dir = done.run_dir(run=run)
    decoded = decode_frames(run_dir / "activations.avi", WIDTH, HEIGHT)
    rows = frames_of(run_dir)
    assert len(decoded) == len(rows)
    for frame, row in zip(decoded, rows):
        png = np.asarray(Image.open(run_dir / row["path"]).convert("RGB"))
        assert np.array_equal(frame, png), row["path"]


def test_video_frame_rate_follows_fps(done):
    from filterlens.video import ffmpeg

    probe = subprocess.run(
        [ffmpeg(), "-hide_banner", "-i", str(done.run_dir(run="styled") / "activations.avi")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert " 2 fps" in probe.stderr


def test_16bit_frames_turn_back_into_activations(done):
    run_dir = done.run_dir(run="data16")
    scales = {(r["layer"], int(r["filter"])): r for r in read_tsv(run_dir / "scales.tsv")}
    conv1 = np.load(done.root / "results/resnet18/chelsea/activations/conv1.npy")
    assert conv1.shape[1:] == (HEIGHT // 2, WIDTH // 2)  # stride 2: frames are 2x nearest
    for row in frames_of(run_dir)[:4]:
        assert row["path"].endswith("_16bit.png")
        pixels = np.asarray(Image.open(run_dir / row["path"])).astype(np.uint16)
        native = pixels[::2, ::2]  # nearest upsampling by 2: every other pixel is the map
        s = scales[(row["layer"], int(row["filter"]))]
        low, high = float(s["low"]), float(s["high"])
        back = from_16bit(native, low, high)
        assert np.abs(back - conv1[int(row["filter"])]).max() <= (high - low) / 65535 / 2 + 1e-6


def test_styled_frames_are_rgb_with_legend_and_overlay(done):
    rows = frames_of(done.run_dir(run="styled"))
    image = np.asarray(Image.open(done.run_dir(run="styled") / rows[0]["path"]))
    plain = np.asarray(Image.open(done.run_dir() / rows[0]["path"]).convert("RGB"))
    assert image.shape == (HEIGHT, WIDTH, 3)
    assert not np.array_equal(image, plain)
    assert (image[:2, :2] == 0).all()  # the legend's black box in the top-left corner


def test_runs_share_one_extraction(done):
    logs = list((done.root / "logs/extract_activations").rglob("*.log"))
    assert len(logs) == 1


def test_manifest_verifies_with_sha256sum(done):
    run_dir = done.run_dir()
    result = subprocess.run(["sha256sum", "--quiet", "-c", "MANIFEST.sha256"], cwd=run_dir)
    assert result.returncode == 0
    listed = [line.split(None, 1)[1] for line in (run_dir / "MANIFEST.sha256").read_text().splitlines()]
    assert listed == sorted(listed)
    assert "activations.avi" in listed and "../activations/conv1.npy" in listed
    provenance = json.loads((run_dir / "provenance.json").read_text())
    assert provenance["versions"]["torch"] and provenance["weights"]["kind"] == "random"


def test_predictions_are_written_and_labelled(done):
    rows = read_tsv(done.root / "results/resnet18/chelsea/activations/predictions.tsv")
    assert [int(r["rank"]) for r in rows] == [1, 2, 3, 4, 5]
    assert all(r["label"] and 0 <= float(r["probability"]) <= 1 for r in rows)


# --- what re-runs ------------------------------------------------------------------------


EXTRACT = "extract_activations_resnet18_1_of_1"  # the tiny config's one batch
PER_IMAGE = {"finish_image", "write_page", "all"}
PICTURES = {"draw_set", "write_explorer"}  # the image set's steps that draw with the base cmap
SET = {"rank_set"} | PICTURES


def test_only_what_changed_reruns(workflow_copy):
    wf = workflow_copy
    tiny = ("--configfile", "tests/configs/tiny.yaml")
    wf.snakemake(*tiny)
    assert wf.dry_run_jobs(*tiny) == {}, "no change: nothing at all"

    stamps = wf.stamps()
    jobs = wf.dry_run_jobs(*tiny, "--config", "cmap=magma")
    assert set(jobs) == {"make_palette", "render_frames"} | PER_IMAGE | PICTURES, (
        "cmap: no extraction, normalization or set tables"
    )
    assert wf.stamps() == stamps, "a dry run leaves the outputs it would re-make as they were"
    assert set(wf.dry_run_jobs(*tiny, "--config", "fps=7")) == PER_IMAGE, "fps: video and page"
    assert set(wf.dry_run_jobs(*tiny, "--config", "top_k=2")) == {"render_frames"} | PER_IMAGE
    jobs = wf.dry_run_jobs(*tiny, "--config", "normalization_mode=global")
    assert set(jobs) == {"normalize_maps", "render_frames"} | PER_IMAGE
    jobs = wf.dry_run_jobs(*tiny, "--config", "use_hist_eq=true")
    assert set(jobs) == {"equalize_maps", "render_frames"} | PER_IMAGE
    assert wf.dry_run_jobs(*tiny, "--config", "batch_size=1") == {}, "batching changes no output"
    assert set(wf.dry_run_jobs(*tiny, "--config", "top_images=2")) == SET | {"all"}
    assert wf.dry_run_jobs(*tiny, "--config", "image_sets={}") == {}, "no sets: fewer outputs only"
    jobs = wf.dry_run_jobs(*tiny, "--config", "layers=[conv1]")
    assert set(jobs) == {EXTRACT, "normalize_maps", "render_frames", "measure_fields"} | PER_IMAGE | SET

    # editing a shared package module re-runs the steps whose scripts import it, only those
    render = wf.root / "workflow/scripts/filterlens/render.py"
    render.write_text(render.read_text() + "\n# an edit\n")
    assert set(wf.dry_run_jobs(*tiny)) == {"make_palette", "render_frames"} | PER_IMAGE | SET


def test_a_new_image_is_extracted_alone_and_nothing_else_reruns(workflow_copy):
    """Its batch holds the image already made too (one bucket for two images), yet only the new
    image is extracted: a current activations folder is in no batch job."""
    wf = workflow_copy
    wf.snakemake("--configfile", "tests/configs/tiny.yaml")
    two = wf.write_config(
        "two.yaml",
        images={"chelsea": "resources/images/chelsea.png", "coffee": "resources/images/coffee.png"},
    )
    jobs = [job for job in wf.dry_run_wildcards("--configfile", str(two)) if job[0] != "all"]
    assert {rule for rule, _ in jobs} == {EXTRACT, "normalize_maps", "render_frames"} | (
        PER_IMAGE - {"all"}) | SET  # the set `all` gained an image
    per_image = [(rule, wildcards) for rule, wildcards in jobs if rule not in {EXTRACT} | SET]
    assert all("image=coffee" in wildcards for _, wildcards in per_image), jobs
    out = wf.snakemake("-n", "--configfile", str(two)).stdout
    extraction = out.split(f"rule {EXTRACT}:")[1].split("output:")[1].splitlines()[0]
    assert "resnet18/coffee/activations" in extraction and "chelsea" not in extraction
    # an image whose source file changed is extracted again; a copy with a new time is not
    image = wf.root / "resources/images/chelsea.png"
    os.utime(image, (1, 1))
    assert wf.dry_run_jobs("--configfile", "tests/configs/tiny.yaml") == {}
    image.write_bytes(image.read_bytes() + b"\0")
    assert EXTRACT in wf.dry_run_jobs("--configfile", "tests/configs/tiny.yaml")


# --- the imagenet path, downloaded from a loopback server --------------------------------


def test_imagenet_weights_are_downloaded_once_verified_and_used(workflow_copy, loopback):
    torch = pytest.importorskip("torch")
    from filterlens.models import build_model

    wf = workflow_copy
    checkpoint = loopback.folder / "resnet18-f37072fd.pth"
    torch.save(build_model("resnet18", seed=0).state_dict(), checkpoint)
    digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    sums = wf.root / "site-checksums.sha256"
    sums.write_text(f"{digest}  resnet18-f37072fd.pth\n")
    config = wf.write_config(
        weights="imagenet", weights_mirror=loopback.url, allow_http_mirror=True,
        weights_checksums=sums.name, seed=5,
    )
    wf.snakemake("--configfile", str(config))

    assert loopback.hits == {"/resnet18-f37072fd.pth": 1}
    record = wf.root / "resources/weights/resnet18.imagenet.sha256"
    assert record.read_text().endswith(f"\n{digest}  resnet18-f37072fd.pth\n")  # sha256sum -c
    info = json.loads((wf.root / "results/resnet18/chelsea/activations/extraction.json").read_text())
    assert info["weights"]["sha256"] == digest and "IMAGENET1K_V1" in info["weights"]["kind"]
    log = (wf.root / "logs/fetch_weights/resnet18.log").read_text()
    assert "ResNet18_Weights.IMAGENET1K_V1" in log and "verified" in log

    # the served weights are the seed-0 random init: the maps equal a weights=random run's
    downloaded = np.load(wf.root / "results/resnet18/chelsea/activations/conv1.npy")
    random_cfg = wf.write_config("random.yaml", weights="random", seed=0)
    wf.snakemake("--configfile", str(random_cfg))  # other weights: extracted again
    assert np.array_equal(downloaded, np.load(wf.root / "results/resnet18/chelsea/activations/conv1.npy"))

    # a fresh results folder re-uses the verified download
    wf.snakemake("--configfile", str(config), "--forceall")
    assert loopback.hits == {"/resnet18-f37072fd.pth": 1}

    # the project folder moved with mv: nothing re-runs (no absolute path in inputs or params)
    moved = wf.root.with_name("moved")
    wf.root.rename(moved)
    assert Workflow(moved).dry_run_jobs("--configfile", config.name) == {}


def test_invalid_config_stops_before_any_job(workflow_copy):
    result = workflow_copy.snakemake(
        "--configfile", "tests/configs/tiny.yaml", "--config", "save_16bit=true",
        "show_legend=true", check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "'save_16bit' and 'show_legend' exclude each other" in result.stderr + result.stdout
    assert not (workflow_copy.root / "results").exists()


def test_lint_and_format_are_clean(workflow_copy):
    result = workflow_copy.snakemake("--lint", "--configfile", "tests/configs/tiny.yaml", check=False)
    assert result.returncode == 0 and "Congratulations" in result.stderr, result.stderr
    snakefmt = [sys.executable, "-m", "snakefmt", "--check", "Snakefile", "workflow/rules"]
    result = subprocess.run(snakefmt, cwd=workflow_copy.root, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_config_yaml_is_valid_as_shipped():
    from conftest import REPO
    from filterlens import config as cfg

    shipped = yaml.safe_load((REPO / "config.yaml").read_text())
    resolved = cfg.validate(shipped, cfg.load_schema(REPO / "workflow/schemas/config.schema.yaml"))
    cfg.check(resolved, REPO)
    assert resolved["models"] == ["alexnet", "resnet18"] and resolved["weights"] == "imagenet"


def test_a_config_file_replaces_the_shipped_images_and_runs(workflow_copy):
    wf = workflow_copy
    mine = wf.write_config("mine.yaml", images={"coffee": "resources/images/coffee.png"})
    jobs = wf.dry_run_wildcards("--configfile", str(mine), "--config", "runs={a: {}, b: {fps: 3}}")
    images = {w.split("image=")[1].split(",")[0] for _, w in jobs if "image=" in w}
    runs = {w.split("run=")[1].split(",")[0] for _, w in jobs if "run=" in w}
    assert images == {"coffee"} and runs == {"a", "b"}
