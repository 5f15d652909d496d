"""Integration: the report outputs of the tiny config (contact sheets, top filters, layer
statistics, preview, page), `snakemake --report`, the report opened from disk in headless
Chromium, and comparisons."""

from __future__ import annotations

import json
import os
import re
import zipfile
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from browser import Browser, find_chromium
from conftest import Workflow, copy_workflow
from filterlens import sheets
from filterlens.files import read_tsv
from filterlens.frames import read_index

pytestmark = pytest.mark.workflow

TINY = ("--configfile", "tests/configs/tiny.yaml")
LAYERS = ("conv1", "layer1.0.conv1")
CATEGORY = "resnet18 · chelsea"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The tiny config run, its report built and unpacked: (workflow, unpacked report folder)."""
    wf = Workflow(copy_workflow(tmp_path_factory.mktemp("report")))
    wf.snakemake(*TINY)
    wf.snakemake(*TINY, "--report", "report.zip")
    unpacked = wf.root / "unpacked"
    with zipfile.ZipFile(wf.root / "report.zip") as archive:
        archive.extractall(unpacked)
    return wf, unpacked / "report"


def report_results(report_dir) -> dict:
    """The report's own table of results (the `results` variable of report.html)."""
    text = (report_dir / "report.html").read_text()
    found = re.search(r'<script id="results">\s*var results = (.*?);\s*</script>', text, re.S)
    return json.loads(found.group(1))


def test_report_builds_and_holds_every_result(built):
    wf, report_dir = built
    results = report_results(report_dir)
    names = sorted(r["name"] for r in results.values())
    sheets_, examples, filter_maps = (["conv1.png", "layer1.0.conv1.png"],) * 3
    assert names == sorted([
        "activations.avi", "chelsea.html", "top_filters.tsv", "explorer.html",
        *sheets_, *examples, *filter_maps,
    ])  # fmt: skip
    sets = {r["name"] for r in results.values() if "set all" in r["caption"]}
    assert sets == {"conv1.png", "layer1.0.conv1.png", "explorer.html"}
    for result in results.values():
        assert (report_dir / result["data_uri"]).is_file(), result["data_uri"]
        if result["mime_type"].startswith("image/"):
            Image.open(report_dir / result["data_uri"]).load()  # whole, not truncated
    page = next(r for r in results.values() if r["mime_type"] == "text/html")
    page_dir = (report_dir / page["data_uri"]).parent
    for name in ("input.png", "layer_stats.png", "layer_stats.tsv", "default/preview.webp",
                 "default/sheets/conv1.png"):  # fmt: skip
        assert (page_dir / name).is_file(), name


def test_every_caption_says_the_weights_are_random(built):
    for path, result in report_results(built[1]).items():
        assert "random weights (seed 0)" in result["caption"], path


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ((), "weights=random (the configuration says imagenet)"),
        ((*TINY, "--config", "cmap=magma"), "cmap=viridis (the configuration says magma)"),
    ],
    ids=["config-not-repeated", "other-cmap"],
)
def test_the_report_refuses_outputs_its_configuration_would_not_make(built, options, named):
    """Captions are written from the configuration: a report for other settings than those that
    made the outputs would mislabel them, so it refuses, naming the keys, and changes nothing."""
    wf, _ = built
    stamps = wf.stamps()
    result = wf.snakemake(*options, "--report", "other.zip", check=False)
    assert result.returncode != 0
    assert "the report would gather outputs that this configuration does not make" in result.stderr
    assert named in result.stderr, result.stderr
    assert not (wf.root / "other.zip").exists()
    assert wf.stamps() == stamps


def test_sheet_tiles_are_the_frames_in_frames_tsv_order(built):
    wf, _ = built
    run_dir = wf.run_dir()
    by_layer = {}
    for frame in read_index(run_dir):
        by_layer.setdefault(frame.layer, []).append((frame.filter, frame.path))
    assert list(by_layer) == list(LAYERS)
    for layer, frames in by_layer.items():
        assert [f for f, _ in frames] == [0, 1, 2, 3]
        image = np.asarray(Image.open(run_dir / "sheets" / f"{layer}.png").convert("RGB"))
        grid = sheets.make_grid(len(frames), (64, 48))
        at = sheets.grid_origin(notes=2, legend=True)
        sheet = sheets.Sheet(None, grid, at)
        for i, (f, path) in enumerate(frames):
            left, top, right, bottom = sheet.tile_box(i)
            expected = np.asarray(sheets.tile(Image.open(run_dir / path), grid.tile))
            assert (image[top:bottom, left:right] == expected).all(), f"{layer} tile {i}"
        # and no tile is another frame's: frames differ, so each box matches only its own
        boxes = [image[slice(b[1], b[3]), slice(b[0], b[2])] for b in map(sheet.tile_box, range(4))]
        assert all((boxes[i] != boxes[j]).any() for i in range(4) for j in range(i + 1, 4))


def test_top_filters_agree_with_the_activations(built):
    wf, _ = built
    acts = wf.root / "results/resnet18/chelsea/activations"
    rows = read_tsv(wf.run_dir() / "top_filters.tsv")
    for layer in LAYERS:
        a = np.load(acts / f"{layer}.npy").astype(np.float64).reshape(4, -1)
        for by, values in (("mean", a.mean(1)), ("max", a.max(1))):
            ranked = [int(r["filter"]) for r in rows if r["layer"] == layer and r["by"] == by]
            assert ranked == list(np.argsort(-values, kind="stable")[:4])  # top_k 8 > 4 filters


def test_layer_stats_agree_with_the_activations(built):
    wf, _ = built
    acts = wf.root / "results/resnet18/chelsea/activations"
    rows = read_tsv(wf.root / "results/resnet18/chelsea/layer_stats.tsv")
    assert [r["layer"] for r in rows] == list(LAYERS)
    for row in rows:
        a = np.load(acts / f"{row['layer']}.npy").astype(np.float64)
        assert float(row["mean"]) == pytest.approx(a.mean(), rel=1e-9)
        assert float(row["std"]) == pytest.approx(a.std(), rel=1e-9)
        assert float(row["max"]) == a.max()
        assert float(row["nonpositive"]) == np.count_nonzero(a <= 0) / a.size


def test_preview_shows_the_sheets_one_layer_after_the_other(built):
    from filterlens import preview as previews

    wf, _ = built
    preview = Image.open(wf.run_dir() / "preview.webp")
    assert preview.n_frames == len(LAYERS)
    for i, layer in enumerate(LAYERS):
        preview.seek(i)
        preview.load()
        assert preview.info["duration"] == previews.DURATION_MS  # not the video's rate
        sheet = Image.open(wf.run_dir() / "sheets" / f"{layer}.png").convert("RGB")
        expected = previews.sheet_frame(sheet, layer)
        shown = np.asarray(preview.convert("RGB"), dtype=int)
        assert np.abs(shown - np.asarray(expected, dtype=int)).mean() < 8  # lossy, same picture


class Sources(HTMLParser):
    def __init__(self):
        super().__init__()
        self.found = []

    def handle_starttag(self, tag, attrs):
        self.found += [value for name, value in attrs if name in ("src", "href") and value]


def test_page_shows_input_predictions_plot_preview_and_sheets(built):
    wf, _ = built
    page_dir = wf.root / "results/report/resnet18/chelsea"
    html = (page_dir / "index.html").read_text()
    parser = Sources()
    parser.feed(html)
    files = [s for s in parser.found if not s.startswith("#")]
    assert set(files) >= {"input.png", "layer_stats.png", "default/preview.webp"} | {
        f"default/sheets/{layer}.png" for layer in LAYERS
    }
    assert all((page_dir / f).is_file() for f in files), files
    assert "random weights (seed 0)" in html and "these predictions mean nothing" in html
    for row in read_tsv(wf.root / "results/resnet18/chelsea/activations/predictions.tsv"):
        assert row["label"] in html


# Shows a result through the report's own viewer and tells whether its <img> loaded.
SHOW_IMAGE = """
(async () => {
  const uri = %s;
  app.setView({content: "img", contentPath: uri, resultPath: %s});
  for (let i = 0; i < 100; i++) {
    const img = Array.from(document.images).find(im => im.getAttribute("src") === uri);
    if (img) {
      if (!img.complete) await new Promise(done => { img.onload = img.onerror = done; });
      return img.naturalWidth > 0;
    }
    await new Promise(done => setTimeout(done, 50));
  }
  return null;
})()
"""

SHOW_SUBCATEGORY = """
(async () => {
  app.setView({navbarMode: "subcategory", category: %s, subcategory: %s});
  await new Promise(done => setTimeout(done, 200));
  return document.body.innerText;
})()
"""


@pytest.mark.skipif(
    os.environ.get("FILTERLENS_SKIP_BROWSER") == "1", reason="FILTERLENS_SKIP_BROWSER=1"
)
def test_report_opens_from_disk_in_headless_chromium(built, tmp_path):
    executable = find_chromium()
    if executable is None:
        pytest.fail(
            "headless Chromium is needed to check the report (Debian: apt-get install chromium); "
            "set FILTERLENS_SKIP_BROWSER=1 to skip this check"
        )
    _, report_dir = built
    results = report_results(report_dir)
    with Browser(executable, tmp_path / "profile") as browser:
        browser.open((report_dir / "report.html").as_uri())
        assert browser.problems() == []
        assert browser.evaluate("typeof app") == "object", "the report's app did not start"
        categories = browser.evaluate("categories")
        assert set(categories) == {CATEGORY, "Image set all"}
        assert set(categories[CATEGORY]) == {
            "1. Overview", "2. Contact sheets, run default", "3. Top filters",
            "4. Videos",
        }  # fmt: skip
        listed = browser.evaluate(
            SHOW_SUBCATEGORY % (json.dumps(CATEGORY), json.dumps("2. Contact sheets, run default"))
        )
        assert all(layer in listed for layer in LAYERS), listed[:500]

        for path, result in results.items():
            if result["mime_type"].startswith("image/"):
                shown = browser.evaluate(SHOW_IMAGE % (json.dumps(result["data_uri"]), json.dumps(path)))
                assert shown is True, f"{path}: the report's viewer shows a broken image ({shown})"
        assert browser.problems() == []

        pages = [r for r in results.values() if r["mime_type"] == "text/html"]
        assert sorted(r["name"] for r in pages) == ["chelsea.html", "explorer.html"]
        explorer = next(r for r in pages if r["name"] == "explorer.html")
        browser.open((report_dir / explorer["data_uri"]).as_uri())
        assert browser.evaluate("document.title").startswith("all"), "the explorer did not open"
        assert browser.problems() == []
        pages = [r for r in pages if r is not explorer]
        for page in pages:  # opened the way the report's frame opens it: a file next to the report
            browser.open((report_dir / page["data_uri"]).as_uri())
            images = browser.images()
            assert len(images) == 3 + len(LAYERS)  # input, plot, preview and one sheet per layer
            assert [src for src, ok in images if not ok] == [], "broken images"
            assert browser.problems() == []
            frames = browser.evaluate(
                "document.querySelector('img[src$=\"preview.webp\"]').naturalWidth"
            )
            assert frames > 0  # the animated WebP decodes
            text = browser.evaluate("document.body.innerText")
            assert "random weights (seed 0)" in text

        for result in results.values():  # the rest the report offers for download
            assert (report_dir / result["data_uri"]).stat().st_size > 0


# --- comparisons -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compared(tmp_path_factory) -> Workflow:
    wf = Workflow(copy_workflow(tmp_path_factory.mktemp("compare")))
    config = wf.write_config(
        images={"chelsea": "resources/images/chelsea.png", "coffee": "resources/images/coffee.png"},
        compare={"cat_vs_cup": {"a": {"model": "resnet18", "image": "chelsea"},
                                "b": {"model": "resnet18", "image": "coffee"}}},
        runs={"default": {}, "layer": {"normalization_mode": "layer", "save_video": False}},
        top_k=2,
    )  # fmt: skip
    wf.snakemake("--configfile", str(config))
    return wf


def test_compare_draws_both_images_on_one_scale_per_layer(compared):
    folder = compared.root / "results/compare/cat_vs_cup"
    rows = read_tsv(folder / "layers.tsv")
    assert [(r["layer"], r["status"]) for r in rows] == [(layer, "compared") for layer in LAYERS]
    for row in rows:
        a = np.load(compared.root / f"results/resnet18/chelsea/activations/{row['layer']}.npy")
        b = np.load(compared.root / f"results/resnet18/coffee/activations/{row['layer']}.npy")
        assert float(row["low"]) == min(a.min(), b.min())
        assert float(row["high"]) == max(a.max(), b.max())
        assert float(row["max_abs_difference"]) == pytest.approx(np.abs(a - b).max())
        image = Image.open(folder / f"{row['layer']}.png")
        assert image.width > 3 * 4 * 64  # three panels of 2 x 2 tiles
    assert sorted(p.name for p in folder.glob("*.png")) == sorted(f"{layer}.png" for layer in LAYERS)


def test_pages_and_sheets_for_every_image_and_run(compared):
    for image in ("chelsea", "coffee"):
        page = (compared.root / f"results/report/resnet18/{image}/index.html").read_text()
        assert "Run default" in page and "Run layer" in page
        assert "this run writes no video" in page  # run layer has save_video: false
        for run in ("default", "layer"):
            for layer in LAYERS:
                assert (compared.run_dir(image=image, run=run) / "sheets" / f"{layer}.png").is_file()
    top = read_tsv(compared.run_dir() / "top_filters.tsv")
    assert len(top) == 2 * 2 * len(LAYERS)  # top_k 2, by mean and by max

