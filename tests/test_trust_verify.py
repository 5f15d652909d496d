"""Trust: `verify` certifies only what it checked. On run folders built by hand (no workflow):
a modified, missing or added file is named and not verified; a manifest cut short or rewritten
over shifted frames is not verified; a missing or malformed provenance.json, manifest, PNG or AVI
gets one clear line, never a traceback; --against never speaks of a re-run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REPO
from filterlens import files, png, render, stats
from filterlens.frames import Frame, write_index
from filterlens.manifest import non_data, read_manifest, run_outputs, write_manifest
from filterlens.provenance import read_provenance, write_provenance
from filterlens.video import encode_avi
from filterlens.verify import Tolerances, verify

LUT = np.stack([np.arange(256), 255 - np.arange(256), np.full(256, 60)], axis=1).astype(np.uint8)
SIZE = (32, 24)  # frame width, height
LAYERS = {"a": (3, 6, 8), "b": (2, 3, 4)}  # layer: channels, map height, map width
RUN = Path("results/m/img/default")
VIDEO = "activations.avi"
SETTINGS = {"cmap": "viridis", "save_video": True, "video_filename": VIDEO, "save_16bit": False,
            "normalization_mode": "filter"}  # fmt: skip


def build_run(root: Path) -> Path:
    """A complete run folder as the workflow lays it out, with its manifest and provenance."""
    run, maps = root / RUN, root / RUN.parent / "activations"
    rng = np.random.default_rng(0)
    frames, layer_rows, stat_rows = [], [], []
    for layer, (c, h, w) in LAYERS.items():
        a = rng.standard_normal((c, h, w)).astype(np.float32)
        files.write_bytes(maps / f"{layer}.npy", npy_bytes(a))
        layer_rows.append((layer, layer, "Conv2d", c, h, w))
        stat_rows += stats.filter_stats(layer, a)
        for f in range(c):
            unit = (a[f] - a[f].min()) / np.ptp(a[f])
            path = f"frames/{layer}/{f:04d}.png"
            write_frame(run / path, render.levels_at_size(unit, SIZE, "nearest", 256))
            frames.append(Frame(len(frames), layer, f, path, (run / path).stat().st_size))
    write_index(run, frames)
    files.write_tsv(maps / "layers.tsv", ("layer", "module", "type", "channels", "height", "width"),
                    layer_rows)  # fmt: skip
    files.write_tsv(maps / "predictions.tsv", ("rank", "class", "label", "probability"),
                    [(1, 3, "cat", 0.5), (2, 7, "dog", 0.25)])  # fmt: skip
    Image.new("RGB", SIZE, (10, 20, 30)).save(maps / "input.png")
    stats.write_filter_stats(maps / stats.FILTER_STATS, stat_rows)
    stats.write_run_stats(run / "activation_stats.tsv", run / "activation_stats.txt", stat_rows)
    encode_avi([run / frame.path for frame in frames], run / VIDEO, 5)
    for name in ("scales.tsv", "equalization.npz", "top_filters.tsv", "preview.webp", "sheets/a.png",
                 "../activations/extraction.json", "frames/a/.snakemake_timestamp"):  # fmt: skip
        files.write_text(run / name, "not data\n")
    write_manifest(run, VIDEO)
    write_provenance(
        run / "provenance.json", model="m", image="img", run="default",
        config={"model": "m", "image": "img.png", "weights": "random", "img_size": list(SIZE)},
        run_settings=SETTINGS, device="cpu", threads=1, weights={"kind": "random", "seed": 0},
        workflow_dir=REPO,
    )  # fmt: skip
    return run


def npy_bytes(a: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, a)
    return buffer.getvalue()


def write_frame(path: Path, index: np.ndarray) -> None:
    files.write_bytes(path, png.palette_png(index.astype(np.uint8), LUT))


def levels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path)).astype(np.int64)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return build_run(tmp_path_factory.mktemp("template")).parents[3]


@pytest.fixture
def pair(template, tmp_path) -> tuple[Path, Path]:
    """Two copies of the same run: the published one (to tamper with) and the reference."""
    for name in ("published", "reference"):
        shutil.copytree(template, tmp_path / name)
    return tmp_path / "published" / RUN, tmp_path / "reference" / RUN


def frame_paths(run: Path) -> list[Path]:
    return sorted(run.glob("frames/*/*.png"))


def rewrite_video_and_manifest(run: Path) -> None:
    """What a careful forger does after changing frames: a new video, a matching manifest."""
    rows = files.read_tsv(run / "frames.tsv")
    encode_avi([run / row["path"] for row in rows], run / VIDEO, 5)
    write_manifest(run, VIDEO)


def claim_other_cpu(run: Path) -> None:
    """Edit provenance.json (outside the manifest) so that tolerances apply instead of identity."""
    path = run / "provenance.json"
    record = json.loads(path.read_text())
    record["cpu_features"]["isa"] = ["sse4_1"]
    path.write_text(json.dumps(record))


def shift_one_level(index: np.ndarray) -> np.ndarray:
    """Every pixel one level up, or down where it is at the top: every pixel changes."""
    return np.where(index < 255, index + 1, index - 1)


def cli(*args) -> subprocess.CompletedProcess:
    command = [sys.executable, str(REPO / "tools/verify.py"), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def lines_with(text: str, status: str) -> list[str]:
    """The files named on the lines of `status` (not the lines on all frames together)."""
    return [line.split(": ", 1)[1].split(" (")[0] for line in text.splitlines()
            if line.strip().startswith(f"{status}:") and ": all " not in line]  # fmt: skip


# --- the published folder against its own manifest -------------------------------------------


def test_an_intact_copy_is_verified_exactly(pair):
    report = verify(*pair)
    text = report.summary()
    assert report.ok and text.splitlines()[-1] == "VERIFIED", text
    assert "exact" in text and "byte-identical" in text
    assert f"all {len(read_manifest(pair[0]))} files match MANIFEST.sha256" in text


def test_the_manifest_covers_the_runs_own_list_of_outputs(pair):
    run = pair[0]
    listed = set(read_manifest(run))
    frames = {row["path"] for row in files.read_tsv(run / "frames.tsv")}
    npy = {f"../activations/{layer}.npy" for layer in LAYERS}
    assert frames | npy | {"frames.tsv", "activation_stats.txt", "activation_stats.tsv", VIDEO} <= listed
    assert listed == set(run_outputs(run, VIDEO))
    assert not any(non_data(p) for p in listed)


def test_a_modified_frame_is_named(pair):
    run = pair[0]
    frame = run / "frames/a/0001.png"
    write_frame(frame, shift_one_level(levels(frame)))
    text = verify(*pair).summary()
    assert lines_with(text, "MODIFIED") == ["frames/a/0001.png"]
    assert text.splitlines()[-1].startswith("NOT VERIFIED")


def test_a_missing_file_is_named(pair):
    run = pair[0]
    (run / "frames/b/0000.png").unlink()
    (run / "../activations/b.npy").unlink()
    text = verify(*pair).summary()
    assert lines_with(text, "MISSING") == ["../activations/b.npy", "frames/b/0000.png"]
    assert text.splitlines()[-1].startswith("NOT VERIFIED")


def test_an_added_file_is_named_and_non_data_files_are_not(pair):
    run = pair[0]
    shutil.copy(run / "frames/a/0000.png", run / "frames/a/0099.png")
    files.write_text(run / "../activations/c.npy", "extra")
    files.write_text(run / "notes.txt", "extra")
    text = verify(*pair).summary()
    assert lines_with(text, "ADDED") == ["../activations/c.npy", "frames/a/0099.png", "notes.txt"]
    assert text.splitlines()[-1].startswith("NOT VERIFIED")


def test_a_manifest_cut_to_one_line_names_every_missing_entry(pair):
    run = pair[0]
    manifest = run / "MANIFEST.sha256"
    first = manifest.read_text().splitlines()[0]
    manifest.write_text(first + "\n")
    report = verify(*pair)
    text = report.summary()
    unlisted = lines_with(text, "NOT IN MANIFEST")
    assert unlisted == sorted(set(run_outputs(run, VIDEO)) - {first.split("  ", 1)[1]})
    assert "frames/b/0001.png" in unlisted and VIDEO in unlisted
    assert not report.ok and text.splitlines()[-1].startswith("NOT VERIFIED")


def test_a_manifest_entry_that_is_no_output_is_named(pair):
    run = pair[0]
    shutil.copy(run / "frames/a/0000.png", run / "frames/a/0099.png")
    manifest = run / "MANIFEST.sha256"
    sha = files.sha256_file(run / "frames/a/0099.png")
    manifest.write_text(manifest.read_text() + f"{sha}  frames/a/0099.png\n")
    text = verify(*pair).summary()
    assert lines_with(text, "NOT AN OUTPUT") == ["frames/a/0099.png"]


def test_a_checked_folder_with_problems_skips_the_rerun(pair, tmp_path):
    (pair[0] / "frames/a/0000.png").write_bytes(b"changed")
    report = verify(pair[0], scratch=tmp_path / "scratch")  # no re-run would be needed to fail
    assert report.other is None and not report.ok
    assert not (tmp_path / "scratch").exists()
    assert "NOT VERIFIED" in report.summary() and "not compared with a re-run" in report.summary()


# --- every frame shifted by one level ---------------------------------------------------------


def shift_every_frame(run: Path) -> int:
    pixels = 0
    for frame in frame_paths(run):
        index = levels(frame)
        write_frame(frame, shift_one_level(index))
        pixels += index.size
    return pixels


def test_every_frame_shifted_fails_the_manifest(pair):
    shift_every_frame(pair[0])
    text = verify(*pair).summary()
    assert lines_with(text, "MODIFIED") == [p.relative_to(pair[0]).as_posix() for p in frame_paths(pair[0])]
    assert text.splitlines()[-1].startswith("NOT VERIFIED")


def test_every_frame_shifted_with_a_rewritten_manifest_fails_on_the_same_stack(pair):
    shift_every_frame(pair[0])
    rewrite_video_and_manifest(pair[0])
    report = verify(*pair)
    text = report.summary()
    assert not report.published.problems  # the forgery matches its own manifest
    assert report.exact and not report.ok
    assert len(lines_with(text, "DIFFERS")) == len(frame_paths(pair[0])) + 1  # and the video
    assert "not byte-identical on the same stack" in text


def test_every_frame_shifted_fails_the_pixel_bound_across_stacks(pair):
    pixels = shift_every_frame(pair[0])
    rewrite_video_and_manifest(pair[0])
    claim_other_cpu(pair[0])
    report = verify(*pair)
    text = report.summary()
    assert not report.exact and "CPU features" in text
    assert report.pixels["frame"].changed == pixels == report.pixels["frame"].total
    assert report.pixels["video"].changed == pixels
    assert f"DIFFERS: all frames: {pixels:,} of {pixels:,} pixels (100%) changed (at most 64: 0.1%" in text
    assert "too many pixels of the frames changed" in text.splitlines()[-1]
    assert text.splitlines()[-1].startswith("NOT VERIFIED")


def test_one_map_value_one_level_off_is_within_tolerance_across_stacks(pair):
    frame = pair[0] / "frames/a/0002.png"
    index = levels(frame)
    block = (SIZE[1] // 6, SIZE[0] // 8)  # one value of the 6 x 8 map: 4 x 4 pixels
    index[: block[0], : block[1]] = shift_one_level(index[: block[0], : block[1]])
    write_frame(frame, index)
    rewrite_video_and_manifest(pair[0])
    claim_other_cpu(pair[0])
    report = verify(*pair)
    text = report.summary()
    assert report.ok, text
    assert ("within tolerance: frames/a/0002.png (16 of 768 pixels changed, by up to 1 level(s); "
            "at most 16 pixels") in text
    # 0.42% of all pixels, over the 0.1% bound, but one map value's pixels are always allowed
    assert "within tolerance: all frames: 16 of 3,840 pixels (0.417%) changed (at most 16" in text


def test_more_than_one_map_value_off_differs_across_stacks(pair):
    frame = pair[0] / "frames/a/0002.png"
    index = levels(frame)
    index[:8, :8] = shift_one_level(index[:8, :8])  # four map values
    write_frame(frame, index)
    rewrite_video_and_manifest(pair[0])
    claim_other_cpu(pair[0])
    text = verify(*pair).summary()
    assert lines_with(text, "DIFFERS") == ["activations.avi", "frames/a/0002.png"]
    assert "64 of 768 pixels changed, by up to 1 level(s); at most 16 pixels" in text
    assert "DIFFERS: all frames: 64 of 3,840 pixels (1.67%) changed (at most 16" in text


def test_the_pixel_bound_is_an_option(pair):
    shift_every_frame(pair[0])
    rewrite_video_and_manifest(pair[0])
    claim_other_cpu(pair[0])
    assert verify(*pair, tolerances=Tolerances(max_changed=1.0)).ok  # one level everywhere allowed
    assert not verify(*pair, tolerances=Tolerances(max_changed=0.5)).ok


def test_two_levels_differ_across_stacks(pair):
    frame = pair[0] / "frames/b/0001.png"
    index = levels(frame)
    index[0, 0] = (index[0, 0] + 2) % 256
    write_frame(frame, index)
    rewrite_video_and_manifest(pair[0])
    claim_other_cpu(pair[0])
    text = verify(*pair).summary()
    assert ("DIFFERS: frames/b/0001.png (1 of 768 pixels changed, by up to 2 level(s); "
            "at most 64 pixels, 1 level(s))") in text


def test_activations_within_rtol_across_stacks_only(pair):
    npy = pair[0] / "../activations/a.npy"
    np.save(npy, np.load(npy) * np.float32(1 + 1e-6))
    write_manifest(pair[0], VIDEO)
    text = verify(*pair).summary()
    assert "DIFFERS: ../activations/a.npy (not byte-identical on the same stack" in text
    claim_other_cpu(pair[0])
    text = verify(*pair).summary()
    assert "within tolerance: ../activations/a.npy" in text and text.endswith("\nVERIFIED")
    np.save(npy, np.load(npy) * np.float32(1.5))
    write_manifest(pair[0], VIDEO)
    text = verify(*pair).summary()
    assert "DIFFERS: ../activations/a.npy (max relative difference" in text


# --- clear messages, never a traceback ---------------------------------------------------------


def one_clear_line(result, *words):
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    line = result.stderr.strip()
    assert "\n" not in line and line.startswith("NOT VERIFIED: ")
    for word in words:
        assert word in line, line
    return line


def test_missing_provenance_is_one_clear_line(pair):
    (pair[0] / "provenance.json").unlink()
    one_clear_line(cli(pair[0], "--against", pair[1]), str(pair[0] / "provenance.json"), "missing", "copy")


def test_malformed_provenance_is_one_clear_line(pair):
    path = pair[0] / "provenance.json"
    path.write_text('{"model": "m", ')
    one_clear_line(cli(pair[0], "--against", pair[1]), str(path), "not readable JSON")
    path.write_text(json.dumps({"model": "m"}))
    one_clear_line(cli(pair[0], "--against", pair[1]), str(path), "lacks key")


def test_missing_manifest_is_one_clear_line(pair):
    (pair[1] / "MANIFEST.sha256").unlink()
    one_clear_line(cli(pair[0], "--against", pair[1]), str(pair[1] / "MANIFEST.sha256"), "missing")


def test_damaged_manifest_is_one_clear_line(pair):
    (pair[0] / "MANIFEST.sha256").write_text("not a checksum line\n")
    one_clear_line(cli(pair[0], "--against", pair[1]), "line 1", "damaged")


def test_a_rerun_without_its_input_image_is_one_clear_line(pair):
    one_clear_line(cli(pair[0]), "img.png", "--against")


def test_a_rerun_outside_a_results_tree_is_one_clear_line(pair, tmp_path):
    loose = tmp_path / "loose"
    shutil.copytree(pair[0].parent, loose / "img")  # run and activations, without results/m/
    one_clear_line(cli(loose / "img/default"), "results/<model>/<image>/<run>", "--against")


@pytest.mark.parametrize("exact", [True, False])
def test_corrupt_png_and_avi_are_named_not_tracebacks(pair, exact):
    (pair[0] / "frames/a/0000.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (pair[0] / VIDEO).write_bytes((pair[0] / VIDEO).read_bytes()[:300])
    write_manifest(pair[0], VIDEO)
    if not exact:
        claim_other_cpu(pair[0])
    result = cli(pair[0], "--against", pair[1])
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines_with(result.stdout, "UNREADABLE") == [VIDEO, "frames/a/0000.png"]
    assert "frames/a/0000.png cannot be read" in result.stdout
    assert "activations.avi is not a readable AVI: cut short" in result.stdout
    assert result.stdout.splitlines()[-1].startswith("NOT VERIFIED")


def test_against_never_speaks_of_a_rerun(pair):
    texts = [cli(pair[0], "--against", pair[1]).stdout]
    (pair[0] / "frames/a/0000.png").write_bytes(b"changed")
    texts.append(cli(pair[0], "--against", pair[1]).stdout)
    write_manifest(pair[0], VIDEO)
    claim_other_cpu(pair[0])
    (pair[1] / "frames/b/0001.png").unlink()
    texts.append(cli(pair[0], "--against", pair[1]).stdout)
    for text in texts:
        assert "the other run" in text
        assert "re-run" not in text.lower() and "rerun" not in text.lower(), text


def test_cli_exit_status(pair):
    result = cli(pair[0], "--against", pair[1])
    assert result.returncode == 0 and result.stdout.splitlines()[-1] == "VERIFIED", result.stdout
    assert result.stdout.splitlines()[0] == f"verify {pair[0]} against {pair[1]}"
    (pair[0] / "notes.txt").write_text("x")
    assert cli(pair[0], "--against", pair[1]).returncode == 1
    assert cli(pair[0], "--against", pair[1], "--max-changed", "2").returncode == 2  # argparse


def test_provenance_records_what_decides_the_bytes(pair):
    record = read_provenance(pair[0] / "provenance.json")
    assert record.model == "m" and record.run_settings == SETTINGS
    assert record.versions["numpy"] == np.__version__ and record.versions["ffmpeg"]
    assert len(record.workflow_code) == 64
    assert record.cpu_features["isa"] is not None and len(record.cpu_features["flags_sha256"]) == 64
