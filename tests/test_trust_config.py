"""Trust: every bad configuration value is refused at start-up, naming the key, before any job.

The fast tests call the same functions the workflow calls at start-up (common.smk): the schema
(`validate`), the checks a schema cannot express (`check`) and the image expansion
(`expand_images`). One end-to-end test shows the refusal reaches the user through Snakemake.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conftest import REPO
from filterlens import config as cfg

SCHEMA = cfg.load_schema(REPO / "workflow/schemas/config.schema.yaml")
TINY = yaml.safe_load((REPO / "tests/configs/tiny.yaml").read_text())


def start_up(basedir: Path = REPO, **values) -> dict:
    """What common.smk does with the configuration: validate, check, expand the images."""
    config = cfg.validate({**TINY, **values}, SCHEMA)
    cfg.check(config, basedir)
    cfg.expand_images(config["images"], basedir)
    return config


def refused(key: str, **values) -> str:
    with pytest.raises(cfg.ConfigError) as info:
        start_up(**values)
    message = str(info.value)
    assert f"'{key}'" in message, f"message does not name {key!r}:\n{message}"
    return message


CHELSEA = "resources/images/chelsea.png"

# (key the message must name, {config key: bad value}); ids say what is wrong.
BAD = {
    # models
    "models-not-a-list": ("models", {"models": "resnet18"}),
    "models-empty": ("models", {"models": []}),
    "models-unknown": ("models", {"models": ["resnet18", "resnet19"]}),
    "models-uppercase": ("models.0", {"models": ["ResNet18"]}),
    "models-path": ("models.0", {"models": ["../resnet18"]}),
    "models-duplicate": ("models", {"models": ["resnet18", "resnet18"]}),
    # weights and where they come from
    "weights-number": ("weights", {"weights": 18}),
    "weights-empty": ("weights", {"weights": ""}),
    "weights-missing-file": ("weights", {"weights": "no/such/checkpoint.pth"}),
    "weights-folder": ("weights", {"weights": "resources/images"}),
    "weights_mirror-scheme": ("weights_mirror", {"weights_mirror": "ftp://mirror.example/"}),
    "weights_mirror-bare-host": ("weights_mirror", {"weights_mirror": "mirror.example"}),
    "weights_checksums-number": ("weights_checksums", {"weights_checksums": 5}),
    "weights_checksums-missing-file": (
        "weights_checksums",
        {"weights_checksums": "no/such.sha256"},
    ),
    "weights_checksums-not-sha256sum": ("weights_checksums", {"weights_checksums": "config.yaml"}),
    "seed-negative": ("seed", {"seed": -1}),
    "seed-too-large": ("seed", {"seed": 2**64}),
    "seed-float": ("seed", {"seed": 1.5}),
    "device-unknown": ("device", {"device": "tpu"}),
    # images: names become folders under results/, files must exist
    "images-empty": ("images", {"images": {}}),
    "images-not-a-mapping": ("images", {"images": CHELSEA}),
    "images-name-parent": ("images", {"images": {"../x": CHELSEA}}),
    "images-name-subfolder": ("images", {"images": {"a/b": CHELSEA}}),
    "images-name-absolute": ("images", {"images": {"/tmp/x": CHELSEA}}),
    "images-name-dot": ("images", {"images": {".": CHELSEA}}),
    "images-name-hidden": ("images", {"images": {".x": CHELSEA}}),
    "images-name-space": ("images", {"images": {"my cat": CHELSEA}}),
    "images-file-number": ("images.cat", {"images": {"cat": 3}}),
    "images-file-empty": ("images.cat", {"images": {"cat": ""}}),
    "images-file-missing": ("images.cat", {"images": {"cat": "resources/images/dog.png"}}),
    "images-glob-no-match": ("images.cat", {"images": {"cat": "resources/images/*.tiff"}}),
    "max_image_pixels-zero": ("max_image_pixels", {"max_image_pixels": 0}),
    # layers and filters
    "layers-empty-list": ("layers", {"layers": []}),
    "layers-number": ("layers", {"layers": 5}),
    "layers-empty-name": ("layers", {"layers": [""]}),
    "max_filters_per_layer-zero": ("max_filters_per_layer", {"max_filters_per_layer": 0}),
    "max_filters_per_layer-float": ("max_filters_per_layer", {"max_filters_per_layer": 2.5}),
    # img_size
    "img_size-zero": ("img_size", {"img_size": 0}),
    "img_size-negative": ("img_size", {"img_size": -224}),
    "img_size-too-small": ("img_size", {"img_size": 8}),
    "img_size-absurd": ("img_size", {"img_size": 100_000}),
    "img_size-absurd-height": ("img_size", {"img_size": [224, 100_000]}),
    "img_size-zero-width": ("img_size", {"img_size": [0, 224]}),
    "img_size-one-item": ("img_size", {"img_size": [224]}),
    "img_size-three-items": ("img_size", {"img_size": [224, 224, 3]}),
    "img_size-string": ("img_size", {"img_size": "large"}),
    "img_size-float": ("img_size", {"img_size": 224.5}),
    # rendering
    "resample-unknown": ("resample", {"resample": "bicubic"}),
    "cmap-unknown": ("cmap", {"cmap": "no_such_colormap"}),
    "cmap-path": ("cmap", {"cmap": "../viridis"}),
    "cmap-number": ("cmap", {"cmap": 7}),
    "normalization_mode-unknown": ("normalization_mode", {"normalization_mode": "pixel"}),
    "clip_percentiles-below-0": ("clip_percentiles", {"clip_percentiles": [-1, 99]}),
    "clip_percentiles-above-100": ("clip_percentiles", {"clip_percentiles": [1, 101]}),
    "clip_percentiles-low-above-high": ("clip_percentiles", {"clip_percentiles": [99, 1]}),
    "clip_percentiles-low-equals-high": ("clip_percentiles", {"clip_percentiles": [50, 50]}),
    "clip_percentiles-one-value": ("clip_percentiles", {"clip_percentiles": [1]}),
    "clip_percentiles-string": ("clip_percentiles", {"clip_percentiles": "1,99"}),
    "use_hist_eq-string": ("use_hist_eq", {"use_hist_eq": "yes"}),
    "save_16bit-number": ("save_16bit", {"save_16bit": 1}),
    "overlay_on_image-string": ("overlay_on_image", {"overlay_on_image": "on"}),
    "overlay_alpha-above-1": ("overlay_alpha", {"overlay_alpha": 1.5}),
    "overlay_alpha-negative": ("overlay_alpha", {"overlay_alpha": -0.1}),
    "show_legend-null": ("show_legend", {"show_legend": None}),
    "show_raw_stats-string": ("show_raw_stats", {"show_raw_stats": "no"}),
    "save_video-string": ("save_video", {"save_video": "off"}),
    "save_16bit-with-overlay": ("save_16bit", {"save_16bit": True, "overlay_on_image": True}),
    "save_16bit-with-legend": ("show_legend", {"save_16bit": True, "show_legend": True}),
    # video
    "video_filename-subfolder": ("video_filename", {"video_filename": "a/b.avi"}),
    "video_filename-parent": ("video_filename", {"video_filename": "../b.avi"}),
    "video_filename-absolute": ("video_filename", {"video_filename": "/tmp/b.avi"}),
    "video_filename-backslash": ("video_filename", {"video_filename": "a\\b.avi"}),
    "video_filename-not-avi": ("video_filename", {"video_filename": "b.mp4"}),
    "video_filename-hidden": ("video_filename", {"video_filename": ".avi"}),
    "fps-zero": ("fps", {"fps": 0}),
    "fps-negative": ("fps", {"fps": -5}),
    "fps-absurd": ("fps", {"fps": 1e6}),
    "fps-string": ("fps", {"fps": "ten"}),
    # runs: names become folders under results/, values override rendering keys only
    "runs-not-a-mapping": ("runs", {"runs": ["a", "b"]}),
    "runs-name-parent": ("runs", {"runs": {"../x": {}}}),
    "runs-name-subfolder": ("runs", {"runs": {"a/b": {}}}),
    "runs-name-dotdot": ("runs", {"runs": {"..": {}}}),
    "runs-name-activations": ("runs", {"runs": {"activations": {}}}),
    "runs-overrides-not-a-mapping": ("runs.a", {"runs": {"a": "magma"}}),
    "runs-key-not-overridable": ("runs.a", {"runs": {"a": {"models": ["alexnet"]}}}),
    "runs-fps-zero": ("runs.a.fps", {"runs": {"a": {"fps": 0}}}),
    "runs-cmap-unknown": ("runs.a.cmap", {"runs": {"a": {"cmap": "no_such_colormap"}}}),
    "runs-video-subfolder": (
        "runs.a.video_filename",
        {"runs": {"a": {"video_filename": "x/y.avi"}}},
    ),
    "runs-percentiles": ("runs.a.clip_percentiles", {"runs": {"a": {"clip_percentiles": [9, 1]}}}),
    "runs-normalization": (
        "runs.a.normalization_mode",
        {"runs": {"a": {"normalization_mode": "x"}}},
    ),
    "runs-16bit-overlay": (
        "runs.a.save_16bit",
        {"runs": {"a": {"save_16bit": True, "overlay_on_image": True}}},
    ),
    # anything else
    "unknown-key": ("colour_map", {"colour_map": "magma"}),
    "container-number": ("container", {"container": 5}),
    # report
    "top_k-zero": ("top_k", {"top_k": 0}),
    "top_k-text": ("top_k", {"top_k": "many"}),
    "top_images-zero": ("top_images", {"top_images": 0}),
    "compare-missing-side": ("compare.x", {"compare": {"x": {"a": {"model": "resnet18", "image": "chelsea"}}}}),
    "compare-escaping-name": ("compare", {"compare": {"../x": {}}}),
}


@pytest.mark.parametrize("key, values", BAD.values(), ids=BAD.keys())
def test_bad_value_is_refused_naming_the_key(key, values):
    message = refused(key, **values)
    assert message.startswith(("invalid configuration", "config key")), message


def test_the_tiny_config_itself_passes():
    """The refusals above are about the one bad value: the base they modify is valid."""
    config = start_up()
    assert config["img_size"] == [64, 48]


@pytest.mark.parametrize(
    "values",
    [{"weights_checksums": "workflow/checksums/weights.sha256"}, {"seed": 2**64 - 1},
     {"img_size": [16, 4096]}, {"clip_percentiles": [0, 100]}, {"fps": 1000},
     {"runs": {"a.b-c_1": {"fps": 0.5}}}, {"images": {"set": "resources/images"}}],
)  # fmt: skip
def test_values_at_the_limits_pass(values):
    start_up(**values)


def test_every_schema_key_has_a_refused_bad_value():
    """No key was forgotten: each top-level key of the schema appears in a case above."""
    tested = {key.split(".")[0] for key, _ in BAD.values()}
    tested |= {name for _, values in BAD.values() for name in values}
    missing = set(SCHEMA["properties"]) - tested
    assert not missing, f"no bad-value case for {sorted(missing)}"


@pytest.mark.workflow
def test_snakemake_refuses_a_bad_value_before_any_job(workflow_copy):
    result = workflow_copy.snakemake(
        "-n", "--configfile", "tests/configs/tiny.yaml", "--config", "img_size=0", check=False
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "config key 'img_size'" in output, output[-3000:]
    assert "value 0 is not allowed" in output
    assert "Building DAG of jobs" not in output  # refused at start-up, before planning any job
    assert not (workflow_copy.root / "results").exists()
