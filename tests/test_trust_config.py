"""Trust: every bad configuration value is refused at start-up, naming the key, before any job.

The fast tests call the same functions the workflow calls at start-up (common.smk): the bound on
YAML aliases (`check_expansion`), the schema (`validate`), the checks a schema cannot express
(`check`), the image expansion (`expand_images`) and the comparisons (`resolve_compare`); names
that become files and folders are checked against one registry (filterlens.names). End-to-end
tests show the refusals reach the user through Snakemake.
"""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest
import yaml
from PIL import Image

from conftest import REPO
from filterlens import config as cfg
from filterlens import names, video

SCHEMA = cfg.load_schema(REPO / "workflow/schemas/config.schema.yaml")
TINY = yaml.safe_load((REPO / "tests/configs/tiny.yaml").read_text())


def start_up(basedir: Path = REPO, **values) -> dict:
    """What common.smk does with the configuration: bound it, validate, check, expand the
    images, resolve the comparisons and the image sets."""
    config = {**TINY, **values}
    cfg.check_expansion(config)
    config = cfg.validate(config, SCHEMA)
    cfg.check(config, basedir)
    images = cfg.expand_images(config["images"], basedir)
    cfg.resolve_compare(config, images, basedir)
    cfg.resolve_sets(config, images, basedir)
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
    "weights_mirror-plain-http": ("weights_mirror", {"weights_mirror": "http://mirror.example/"}),
    "weights_mirror-password": ("weights_mirror", {"weights_mirror": "https://u:pw@mirror.ex/"}),
    "weights_mirror-no-folder": ("weights_mirror", {"weights_mirror": "file:///no/such/folder"}),
    "weights_mirror-empty": ("weights_mirror", {"weights_mirror": ""}),
    "allow_http_mirror-string": ("allow_http_mirror", {"allow_http_mirror": "yes"}),
    "require_full_sha256-string": ("require_full_sha256", {"require_full_sha256": "maybe"}),
    "weights_download_deadline_s-zero": (
        "weights_download_deadline_s",
        {"weights_download_deadline_s": 0},
    ),
    "weights_max_bytes-zero": ("weights_max_bytes", {"weights_max_bytes": 0}),
    "weights_checksums-number": ("weights_checksums", {"weights_checksums": 5}),
    "construction-unknown": ("construction", {"construction": "torchvision"}),
    "construction-boolean": ("construction", {"construction": True}),
    "preprocess-unknown": ("preprocess", {"preprocess": "crop"}),
    "weights_checksums-missing-file": (
        "weights_checksums",
        {"weights_checksums": "no/such.sha256"},
    ),
    "weights_checksums-not-sha256sum": ("weights_checksums", {"weights_checksums": "config.yaml"}),
    "seed-negative": ("seed", {"seed": -1}),
    "seed-too-large": ("seed", {"seed": 2**64}),
    "seed-float": ("seed", {"seed": 1.5}),
    "seed-float-past-2**53": ("seed", {"seed": 2.0**60}),  # may not be the integer written
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
    "images-name-case": ("images.cat", {"images": {"cat": CHELSEA, "Cat": CHELSEA}}),
    "max_image_pixels-zero": ("max_image_pixels", {"max_image_pixels": 0}),
    "batch_size-zero": ("batch_size", {"batch_size": 0}),
    "image_sets-unknown-image": ("image_sets.cats", {"image_sets": {"cats": ["dog"]}}),
    "image_sets-empty": ("image_sets.cats", {"image_sets": {"cats": []}}),
    "image_sets-bad-name": ("image_sets", {"image_sets": {"_x": ["chelsea"]}}),
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
    "fps-below-minimum": ("fps", {"fps": 0.000999}),
    "fps-negative": ("fps", {"fps": -5}),
    "fps-absurd": ("fps", {"fps": 1e6}),
    "fps-string": ("fps", {"fps": "ten"}),
    # runs: names become folders under results/, values override rendering keys only
    "runs-not-a-mapping": ("runs", {"runs": ["a", "b"]}),
    "runs-name-parent": ("runs", {"runs": {"../x": {}}}),
    "runs-name-subfolder": ("runs", {"runs": {"a/b": {}}}),
    "runs-name-dotdot": ("runs", {"runs": {"..": {}}}),
    "runs-name-activations": ("runs.activations", {"runs": {"activations": {}}}),
    "runs-name-activations-case": ("runs.Activations", {"runs": {"Activations": {}}}),
    "runs-name-image-file": ("runs.layer_stats.tsv", {"runs": {"layer_stats.tsv": {}}}),
    "runs-name-case": ("runs.dark", {"runs": {"dark": {}, "Dark": {}}}),
    "runs-overrides-not-a-mapping": ("runs.a", {"runs": {"a": "magma"}}),
    "runs-key-not-overridable": ("runs.a", {"runs": {"a": {"models": ["alexnet"]}}}),
    "runs-fps-zero": ("runs.a.fps", {"runs": {"a": {"fps": 0}}}),
    "runs-fps-below-minimum": ("runs.a.fps", {"runs": {"a": {"fps": 0.0005}}}),
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
    "explorer_max_images-zero": ("explorer_max_images", {"explorer_max_images": 0}),
    "explorer_max_images-float": ("explorer_max_images", {"explorer_max_images": 2.5}),
    "top_images-zero": ("top_images", {"top_images": 0}),
    "compare-missing-side": ("compare.x", {"compare": {"x": {"a": {"model": "resnet18", "image": "chelsea"}}}}),
    "compare-escaping-name": ("compare", {"compare": {"../x": {}}}),
    "compare-name-case": (
        "compare.x",
        {"compare": {n: {"a": {"model": "resnet18", "image": "chelsea"},
                         "b": {"model": "alexnet", "image": "chelsea"}} for n in ("x", "X")}},
    ),  # fmt: skip
}


@pytest.mark.parametrize("key, values", BAD.values(), ids=BAD.keys())
def test_bad_value_is_refused_naming_the_key(key, values):
    message = refused(key, **values)
    assert message.startswith(("invalid configuration", "config key")), message


def test_the_tiny_config_itself_passes():
    """The refusals above are about the one bad value: the base they modify is valid."""
    config = start_up()
    assert config["img_size"] == [64, 48]
    assert (config["construction"], config["preprocess"]) == ("auto", "stretch")  # defaults


@pytest.mark.parametrize(
    "values",
    [{"weights_checksums": "workflow/checksums/weights.sha256"}, {"seed": 2**64 - 1},
     {"img_size": [16, 4096]}, {"clip_percentiles": [0, 100]}, {"fps": 1000}, {"fps": 0.001},
     {"runs": {"a.b-c_1": {"fps": 0.5}}}, {"images": {"set": "resources/images"}},
     {"construction": "pretrained"}, {"construction": "plain"}, {"preprocess": "weights"},
     {"preprocess": "letterbox"}],
)  # fmt: skip
def test_values_at_the_limits_pass(values):
    start_up(**values)


def test_every_schema_key_has_a_refused_bad_value():
    """No key was forgotten: each top-level key of the schema appears in a case above."""
    tested = {key.split(".")[0] for key, _ in BAD.values()}
    tested |= {name for _, values in BAD.values() for name in values}
    missing = set(SCHEMA["properties"]) - tested
    assert not missing, f"no bad-value case for {sorted(missing)}"


# --- whole-number floats are integers ----------------------------------------------------------


@pytest.mark.parametrize(
    "text, key, expected",
    [
        ("img_size: [64.0, 48.0]", "img_size", [64, 48]),
        ("img_size: 64.0", "img_size", 64),
        ("max_filters_per_layer: 2.0", "max_filters_per_layer", 2),
        ("seed: 7.0", "seed", 7),
        ("max_image_pixels: 1.0e+6", "max_image_pixels", 1_000_000),
        ("top_k: 3.0", "top_k", 3),
    ],
)
def test_whole_number_float_in_yaml_is_an_integer(text, key, expected):
    config = start_up(**yaml.safe_load(text))
    assert config[key] == expected
    values = config[key] if isinstance(expected, list) else [config[key]]
    assert all(type(v) is int for v in values), values  # not 64.0: code downstream needs an int


def test_whole_number_float_on_the_command_line_is_an_integer():
    """`--config img_size=[64.0,48.0]` arrives as text; `max_filters_per_layer=2.0` as a float."""
    config = start_up(img_size=["64.0", "48.0"], max_filters_per_layer=2.0)
    assert (config["img_size"], config["max_filters_per_layer"]) == ([64, 48], 2)
    assert type(config["max_filters_per_layer"]) is int


@pytest.mark.parametrize(
    "values", [{"img_size": [64.5, 48]}, {"img_size": "64.5"}, {"max_filters_per_layer": 2.5}]
)
def test_fractional_float_is_still_refused(values):
    key = next(iter(values))
    message = refused(key, **values)
    assert "is not allowed" in message and "integer" in message


# --- fps: every allowed value encodes --------------------------------------------------------


def avi_rate(path: Path) -> Fraction:
    """The frame rate an AVI's video stream header (strh) stores, as dwRate / dwScale."""
    data = path.read_bytes()
    header = data.index(b"strh") + 8
    scale, rate = (int.from_bytes(data[i : i + 4], "little") for i in (header + 20, header + 24))
    return Fraction(rate, scale)


def test_smallest_allowed_fps_encodes_a_real_video_at_that_rate(tmp_path):
    lowest = SCHEMA["definitions"]["run_keys"]["fps"]["minimum"]
    frames = []
    for i, colour in enumerate([(255, 0, 0), (0, 0, 255)]):
        frames.append(tmp_path / f"{i}.png")
        Image.new("RGB", (8, 8), colour).save(frames[-1])
    target = tmp_path / "slow.avi"
    assert video.encode_avi(frames, target, start_up(fps=lowest)["fps"]) == 2
    assert avi_rate(target) == Fraction(str(lowest))
    decoded = video.decode_frames(target, 8, 8)
    assert decoded.shape == (2, 8, 8, 3) and tuple(decoded[1, 0, 0]) == (0, 0, 255)
    refused("fps", fps=lowest * 0.999)


# --- YAML aliases: a bound before anything walks the configuration ---------------------------


def alias_bomb(levels: int, width: int = 10, mapping: bool = False) -> str:
    """YAML whose nested aliases expand to width**levels values ("billion laughs")."""
    if mapping:
        node = "&a0 {" + ", ".join(f"k{j}: conv1" for j in range(width)) + "}"
    else:
        node = "&a0 [" + ", ".join(["conv1"] * width) + "]"
    for i in range(1, levels):
        refs = [f"*a{i - 1}"] * (width - 1)
        if mapping:
            items = [f"k0: {node}"] + [f"k{j}: {ref}" for j, ref in enumerate(refs, 1)]
            node = f"&a{i} {{" + ", ".join(items) + "}"
        else:
            node = f"&a{i} [" + ", ".join([node, *refs]) + "]"
    return f"layers: {node}\n"


@pytest.mark.parametrize("mapping", [False, True], ids=["lists", "mappings"])
def test_alias_bomb_file_is_refused_naming_file_and_bound(tmp_path, mapping):
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb(9, mapping=mapping))  # a billion values in 0.5 kB
    with pytest.raises(cfg.ConfigError) as info:
        cfg.check_expansion({}, [path])
    assert str(info.value).startswith(f"config file {path}: its YAML aliases")
    assert "more than 100,000 values" in str(info.value)


def test_alias_bomb_in_the_merged_configuration_is_refused():
    """What Snakemake merged (lists stay shared references) is bounded too."""
    config = {**TINY, **yaml.safe_load(alias_bomb(9))}
    with pytest.raises(cfg.ConfigError, match="^the configuration: its YAML aliases"):
        start_up(**config)


def test_alias_cycle_is_refused(tmp_path):
    path = tmp_path / "loop.yaml"
    path.write_text("layers: &loop [conv1, *loop]\n")
    with pytest.raises(cfg.ConfigError, match="refers to a value that contains it"):
        cfg.load_yaml(path)


def test_aliases_within_the_bound_pass(tmp_path):
    path = tmp_path / "shared.yaml"
    path.write_text(alias_bomb(4) + "img_size: &side [64, 64]\nrecheck: *side\n")
    cfg.load_yaml(path)  # 10**4 values
    bound = {"layers": [["conv1"] * 1000] * 99}  # 99,000 leaves + 100 lists: at the bound
    cfg.check_expansion(bound)
    with pytest.raises(cfg.ConfigError):
        cfg.check_expansion({"layers": [["conv1"] * 1000] * 100})


# Runs a command and prints the peak memory of its process tree (kB), so that the test sees
# Snakemake's memory alone.
PEAK_RSS = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stdout.write(done.stdout + done.stderr)
print(f"\\npeak-rss-kb {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}")
"""


@pytest.mark.workflow
def test_snakemake_refuses_an_alias_bomb_in_little_time_and_memory(workflow_copy):
    """A billion-value list bomb: refused at start-up, in the memory Snakemake needs anyway. A
    walk of it (validation, copying, provenance) would take hours and all memory."""
    bomb = workflow_copy.root / "bomb.yaml"
    bomb.write_text(alias_bomb(9))
    command = [sys.executable, "-c", PEAK_RSS, sys.executable, "-m", "snakemake", "--cores", "1",
               "-n", "--configfile", str(bomb)]  # fmt: skip
    result = subprocess.run(command, cwd=workflow_copy.root, capture_output=True, text=True,
                            timeout=300)  # fmt: skip
    output, peak = result.stdout.rsplit("peak-rss-kb", 1)
    assert f"config file {bomb}: its YAML aliases (*name) expand to more than 100,000" in output
    assert "Building DAG of jobs" not in output
    assert int(peak) < 1_000_000, f"peak memory {int(peak) // 1024} MiB"


# --- names that become files and folders -----------------------------------------------------


def folder_of_images(root: Path, folder: str, *files: str) -> Path:
    (root / folder).mkdir(parents=True)
    for name in files:
        Image.new("RGB", (2, 2)).save(root / folder / name)
    return root


def test_folder_image_meeting_a_named_image_is_refused(tmp_path):
    folder_of_images(tmp_path, "shots", "a.png", "b.png")
    (tmp_path / "b.png").write_bytes((tmp_path / "shots/b.png").read_bytes())
    with pytest.raises(cfg.ConfigError) as info:
        cfg.expand_images({"shots": "shots", "shots_b": "b.png"}, tmp_path)
    assert str(info.value) == (
        "config key 'images.shots' -> image name 'shots_b' (from shots/b.png) and config key "
        "'images.shots_b' both make results/<model>/shots_b; rename one of them"
    )


def test_two_files_with_one_stem_are_refused(tmp_path):
    folder_of_images(tmp_path, "shots", "a.png", "a.JPG")
    with pytest.raises(cfg.ConfigError, match=r"\(from shots/a.JPG\) and .* \(from shots/a.png\)"):
        cfg.expand_images({"shots": "shots"}, tmp_path)


def test_folder_images_differing_in_case_only_are_refused(tmp_path):
    folder_of_images(tmp_path, "shots", "Cat.png", "cat.jpg")
    with pytest.raises(cfg.ConfigError, match="ignores case, as on macOS and Windows"):
        cfg.expand_images({"shots": "shots"}, tmp_path)


def test_image_name_too_long_with_the_suffixes_is_refused(tmp_path):
    """`shots_<stem>.log` and its temporary name `.shots_<stem>.log.<8 hex>.tmp` must fit."""
    longest = 255 - len(".shots_.log.01234567.tmp")
    folder_of_images(tmp_path, "shots", "x" * longest + ".png")
    assert list(cfg.expand_images({"shots": "shots"}, tmp_path)) == ["shots_" + "x" * longest]
    folder_of_images(tmp_path, "snaps", "y" * (longest + 1) + ".png")
    with pytest.raises(cfg.ConfigError) as info:
        cfg.expand_images({"snaps": "snaps"}, tmp_path)
    assert "config key 'images.snaps' -> image name 'snaps_yyy" in str(info.value)
    assert "would be 256 bytes, over the file system's limit of 255 bytes" in str(info.value)
    assert "rename the file or shorten the key" in str(info.value)


def test_name_length_limit_is_the_file_systems(tmp_path, monkeypatch):
    """eCryptfs, for one, takes 143 bytes; the limit is asked of the folder results/ goes in."""
    asked = []

    def pathconf(path, name):
        asked.append((Path(path), name))
        return 143

    monkeypatch.setattr(names.os, "pathconf", pathconf)
    folder_of_images(tmp_path, "shots", "x" * 120 + ".png")
    with pytest.raises(cfg.ConfigError, match="limit of 143 bytes"):
        cfg.expand_images({"shots": "shots"}, tmp_path)
    assert (tmp_path.resolve(), "PC_NAME_MAX") in asked  # results/ does not exist yet


def test_name_length_limit_defaults_to_255_bytes(tmp_path, monkeypatch):
    def no_pathconf(path, name):
        raise OSError("not supported")

    monkeypatch.setattr(names.os, "pathconf", no_pathconf)
    assert names.name_max(tmp_path) == 255


@pytest.mark.parametrize(
    "sets, words",
    [
        ({"pets": [], "Pets": []}, ["'image_sets.pets' and config key 'image_sets.Pets'",
                                    "results/<model>/_sets/pets", "ignores case"]),
        ({"{pets}": []}, ["'image_sets.{pets}'", "wildcard"]),
        ({".pets": []}, ["'image_sets..pets'", "starts with '.'"]),
        ({"p" * 238: []}, ["would be 256 bytes", "at most 237 bytes"]),
    ],
    ids=["case", "braces", "hidden", "too-long"],
)  # fmt: skip
def test_image_set_names_are_checked(sets, words):
    """For the coming `image_sets` key: its resolver calls check_names("set", ...)."""
    with pytest.raises(cfg.ConfigError) as info:
        cfg.check_names("set", [names.Name(s, f"image_sets.{s}") for s in sets])
    for word in words:
        assert word in str(info.value)


def test_registry_refuses_reserved_entries_at_every_level():
    """Each of the workflow's own entries is refused as the name that would meet it."""
    for level in names.LEVELS:
        for entry in level.reserved:
            name = names.Name(entry, f"x.{entry}")
            found = names.problems(level.kind, [name])
            assert any(f"{level.folder}{entry} is the workflow's own" in p for p in found), entry
        for prefix in level.prefixes:
            found = names.problems(level.kind, [names.Name(f"{prefix}x", f"x.{prefix}x")])
            assert any(f"starts with '{prefix}'" in p for p in found), prefix


def test_valid_names_pass_the_registry():
    valid = [names.Name(n, f"runs.{n}") for n in ("default", "dark", "a.b-c_1", "x" * 80)]
    assert names.problems("run", valid) == []
    assert cfg.expand_images({"pet": CHELSEA}, REPO) == {"pet": CHELSEA}


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
