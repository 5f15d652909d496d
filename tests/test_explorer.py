"""The explorer of an image set: what write_explorer writes and refuses, and the page itself in
headless Chromium on a ResNet18-shaped set of 32 images at 224 x 224 (synthetic maps)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from browser import Browser, find_chromium
from explorer_sets import make_set, write_top_images
from filterlens import explorer
from filterlens.activations import LAYER_COLUMNS
from filterlens.explorer import (
    ExplorerError,
    decode_levels,
    map_payload,
    read_script,
    write_explorer,
)
from filterlens.files import write_tsv
from filterlens.render import nearest_index, quantize

LUT = np.stack([np.arange(256), 255 - np.arange(256), np.full(256, 60)], axis=1).astype(np.uint8)
WEIGHTS = "random weights (seed 0)"
NOTE = "Maps on one scale per filter shared by the set; nearest upsampling."
SMALL = [("a", (3, 8, 6), (3, 2)), ("b.conv", (5, 4, 3), (20, 4))]  # input 12 x 16 (w x h)
SMALL_SIZE = (12, 16)


def tolerance(value: float, span: float) -> float:
    """What the page may differ from the .npy value by: max(float16 half-ulp, range / 65535)."""
    half_ulp = float(np.spacing(np.float16(abs(value)))) / 2 if abs(value) < 65504 else np.inf
    return max(half_ulp, span / 65535)


# --- transport -----------------------------------------------------------------------------------
def test_maps_read_back_within_half_a_level_of_the_float32_values():
    rng = np.random.default_rng(1)
    maps = (rng.standard_normal((4, 9, 7)) * 3 - 1).astype(np.float32)
    payload = map_payload(maps)
    assert (payload["low"], payload["high"]) == (float(maps.min()), float(maps.max()))
    back = decode_levels(payload, maps.shape)
    span = payload["high"] - payload["low"]
    assert np.abs(back - maps).max() <= span / 131070 * (1 + 1e-9)
    assert back.min() == maps.min() and back.max() == maps.max()  # the ends are exact
    assert payload["max"] == pytest.approx(maps.reshape(4, -1).max(1), rel=1e-6)
    assert payload["mean"] == pytest.approx(maps.reshape(4, -1).mean(1), rel=1e-6)


def test_a_constant_filter_reads_back_exactly():
    maps = np.full((3, 4, 4), -0.25, np.float32)
    payload = map_payload(maps)
    assert (decode_levels(payload, maps.shape) == -0.25).all()


# --- the folder ----------------------------------------------------------------------------------
@pytest.fixture
def small(tmp_path):
    """Five images of two small layers, their top images (k 2) and the explorer with cap 3."""
    folders = make_set(tmp_path / "set", 5, layers=SMALL, size=SMALL_SIZE)
    rows = write_top_images(
        tmp_path / "top_images.tsv", folders, layers=SMALL, k=2, size=SMALL_SIZE
    )
    target = tmp_path / "explorer"
    written = write_explorer(target, "five", folders, rows, LUT, WEIGHTS, NOTE, cap=3)
    return folders, rows, target, written


def test_the_folder_holds_the_page_the_index_one_script_per_filter_and_the_inputs(small):
    folders, rows, target, written = small
    files = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    top_names = {r["image"] for r in rows}
    inputs = sorted(f"inputs/{i:04d}.png" for i, n in enumerate(folders) if i < 3 or n in top_names)
    maps = [f"maps/{layer}/{f:04d}.js" for layer, (c, _, _), _ in SMALL for f in range(c)]
    assert files == sorted(
        ["index.html", "explorer.css", "explorer.js", "data/index.js", *maps, *inputs]
    )
    assert (written.files, written.held, written.listed) == (len(files), 3, 2)
    assert written.bytes == sum((target / f).stat().st_size for f in files)
    for i, name in enumerate(folders):
        if f"inputs/{i:04d}.png" in inputs:
            assert (target / f"inputs/{i:04d}.png").read_bytes() == (
                folders[name] / "input.png"
            ).read_bytes()

    index = read_script(target / "data/index.js")
    assert index["held"] == ["img000", "img001", "img002"] and index["listed"] == [
        "img003",
        "img004",
    ]
    assert index["inputs"] == {
        n: f"inputs/{i:04d}.png" for i, n in enumerate(folders) if f"inputs/{i:04d}.png" in inputs
    }
    assert [(l["layer"], l["channels"], l["height"], l["width"]) for l in index["layers"]] == [
        (layer, *shape) for layer, shape, _ in SMALL
    ]
    assert bytes.fromhex(index["palette"]) == LUT.tobytes()
    assert (index["weights"], index["note"], index["set"], index["cap"]) == (
        WEIGHTS,
        NOTE,
        "five",
        3,
    )
    assert index["input"] == {"width": 12, "height": 16}
    assert "<title>five · filterlens explorer</title>" in (target / "index.html").read_text()


def test_a_filter_script_holds_the_held_maps_on_their_shared_scale_and_its_top_images(small):
    folders, rows, target, _ = small
    held = list(folders)[:3]
    for layer, (c, h, w), _ in SMALL:
        for f in range(c):
            data = read_script(target / f"maps/{layer}/{f:04d}.js")
            maps = np.stack([np.load(folders[n] / f"{layer}.npy")[f] for n in held])
            assert (data["layer"], data["filter"]) == (layer, f)
            assert (data["low"], data["high"]) == (float(maps.min()), float(maps.max()))
            back = decode_levels(data, maps.shape)
            assert np.abs(back - maps).max() <= (data["high"] - data["low"]) / 131070 * (1 + 1e-9)
            for by in ("max", "mean"):
                expected = [
                    r for r in rows if (r["layer"], int(r["filter"]), r["by"]) == (layer, f, by)
                ]
                got = data["top"][by]
                assert [e[:2] for e in got] == [[int(r["rank"]), r["image"]] for r in expected]
                assert [e[3:] for e in got] == [
                    [int(r[k]) for k in explorer.TOP_INTEGERS[2:]] for r in expected
                ]


def test_first_view_bytes_are_the_files_the_first_filter_needs(small):
    folders, rows, target, written = small
    data = read_script(target / "maps/a/0000.js")
    names = {e[1] for by in data["top"].values() for e in by}
    index = read_script(target / "data/index.js")
    needed = ["index.html", "explorer.css", "explorer.js", "data/index.js", "maps/a/0000.js"]
    needed += ["maps/a/0001.js"]  # fetched ahead
    needed += [index["inputs"][n] for n in names]
    assert written.first_view_bytes == sum((target / f).stat().st_size for f in needed)


# --- refusals ------------------------------------------------------------------------------------
def _other_layer_shape(folders):
    write_tsv(folders["img001"] / "layers.tsv", LAYER_COLUMNS, [("a", "a", "Conv2d", 3, 8, 5, 3)])


def _float64_map(folders):
    np.save(folders["img002"] / "b.conv.npy", np.zeros((5, 4, 3)))


def _nan(folders):
    a = np.load(folders["img001"] / "b.conv.npy")
    a[2, 1, 1] = np.nan
    np.save(folders["img001"] / "b.conv.npy", a)


def _missing_input(folders):
    (folders["img000"] / "input.png").unlink()


@pytest.mark.parametrize(
    "spoil, rows_change, named",
    [
        (_other_layer_shape, None, ["img001", "layers.tsv", "img000", "('a', 3, 8, 5)"]),
        (_float64_map, None, ["img002", "b.conv.npy", "float64", "float32"]),
        (_nan, None, ["img001", "b.conv.npy", "filter 2", "NaN"]),
        (_missing_input, None, ["img000", "input.png"]),
        (None, {"image": "nowhere"}, ["top_images.tsv line 2", "'nowhere' is not in the set"]),
        (None, {"filter": "3"}, ["top_images.tsv line 2", "filter 3 is not in 0..2"]),
        (None, {"layer": "c"}, ["top_images.tsv line 2", "layer 'c'", "a, b.conv"]),
        (None, {"by": "median"}, ["top_images.tsv line 2", "'median', not mean or max"]),
        (None, {"y": "8"}, ["top_images.tsv line 2", "(y, x) = (8,"]),
        (None, {"value": "high"}, ["top_images.tsv line 2", "value a number"]),
    ],
)
def test_bad_input_is_refused_naming_it_and_nothing_is_written(tmp_path, spoil, rows_change, named):
    folders = make_set(tmp_path / "set", 3, layers=SMALL, size=SMALL_SIZE)
    rows = write_top_images(tmp_path / "top.tsv", folders, layers=SMALL, k=2, size=SMALL_SIZE)
    if spoil:
        spoil(folders)
    if rows_change:
        rows[0] = {**rows[0], **rows_change}
    target = tmp_path / "explorer"
    (target / "maps").mkdir(parents=True)
    (target / "index.html").write_text("the explorer from before")
    with pytest.raises(ExplorerError) as err:
        write_explorer(target, "three", folders, rows, LUT, WEIGHTS, NOTE)
    for word in named:
        assert word in str(err.value)
    assert (target / "index.html").read_text() == "the explorer from before"  # kept as it was
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "explorer",
        "set",
        "top.tsv",
    ]  # no partial


@pytest.mark.parametrize(
    "args, named",
    [
        ({"images": {}}, "the set has no images"),
        ({"images": [("x", "f"), ("x", "g")]}, "image 'x' is named twice"),
        ({"cap": 0}, "explorer_max_images is 0"),
        ({"palette": LUT[:, :2]}, "uint8 (256, 2)"),
    ],
)
def test_an_unusable_call_is_refused_with_the_fix(tmp_path, args, named):
    folders = make_set(tmp_path / "set", 2, layers=SMALL[:1], size=SMALL_SIZE)
    call = {"images": folders, "palette": LUT, "cap": 64, **args}
    with pytest.raises(ExplorerError, match=named.replace("(", r"\(").replace(")", r"\)")):
        write_explorer(
            tmp_path / "e", "s", call["images"], [], call["palette"], WEIGHTS, NOTE, cap=call["cap"]
        )
    assert not (tmp_path / "e").exists()


# --- in headless Chromium ------------------------------------------------------------------------
# Resolves when the page has drawn the maps of `key` ("layer/filter"): the page's own time from
# the selection to the frame after drawing, in ms.
SHOWN = """
(async () => {
  const root = document.documentElement;
  for (let i = 0; i < 1000 && root.dataset.shown !== %s; i++) await new Promise(d => setTimeout(d, 5));
  return root.dataset.shown === %s ? Number(root.dataset.elapsed) : null;
})()
"""
# The RGB of the pixels [tile, y, x] of the map canvases (at map resolution).
PIXELS = """
%s.map(([i, y, x]) => Array.from(document.querySelectorAll("canvas.map")[i]
  .getContext("2d").getImageData(x, y, 1, 1).data.slice(0, 3)))
"""
# Resolves to the number of data scripts still loading once none is (or after 5 s).
LOADED = """
(async () => {
  const loading = () => filterlensExplorer.state().loading;
  for (let i = 0; i < 1000 && loading(); i++) await new Promise(d => setTimeout(d, 5));
  return loading();
})()
"""
# What the readout under the pointer shows: its text, the value alone, and image, y and x.
READOUT = """
(() => {
  const box = document.getElementById("readout");
  return {text: box.innerText, value: box.querySelector(".value")?.textContent, ...box.dataset};
})()
"""
SWITCH_MS = 300  # the requirement: switching filters shows the new maps within 300 ms
FIRST_VIEW_BYTES = 5_000_000


@pytest.fixture(scope="module")
def chromium():
    if os.environ.get("FILTERLENS_SKIP_BROWSER") == "1":
        pytest.skip("FILTERLENS_SKIP_BROWSER=1")
    executable = find_chromium()
    if executable is None:
        pytest.fail(
            "headless Chromium is needed to check the explorer (Debian: apt-get install chromium); "
            "set FILTERLENS_SKIP_BROWSER=1 to skip this check"
        )
    return executable


@pytest.fixture(scope="module")
def resnet_set(tmp_path_factory, chromium):
    """32 images with ResNet18's 20 conv layers at 224 x 224 (4,800 filters), their top images
    and the explorer: (folders, explorer folder, Written)."""
    root = tmp_path_factory.mktemp("resnet18x32")
    folders = make_set(root / "set", 32)
    rows = write_top_images(root / "top_images.tsv", folders, k=4)
    target = root / "explorer"
    written = write_explorer(target, "resnet18x32", folders, rows, LUT, WEIGHTS, NOTE)
    return folders, target, written


@pytest.fixture
def page(resnet_set, chromium, tmp_path):
    with Browser(chromium, tmp_path / "profile", size=(1500, 1000)) as browser:
        yield browser


def open_at(browser, target, layer="conv1", f=0, hash_=True):
    url = (target / "index.html").as_uri() + (f"#layer={layer}&filter={f}" if hash_ else "")
    browser.open(url)
    return shown(browser, layer, f)


def shown(browser, layer, f):
    key = json.dumps(f"{layer}/{f}")
    elapsed = browser.evaluate(SHOWN % (key, key))
    assert elapsed is not None, f"the maps of {layer} filter {f} were not drawn"
    return elapsed


def expected_rgb(folders, layer, f, probes):
    """The colors the page must draw at [tile, y, x]: the held maps on their shared scale,
    at the 256 levels of the frames, through the palette."""
    maps = np.stack([np.load(folders[n] / f"{layer}.npy", mmap_mode="r")[f] for n in folders])
    payload = map_payload(maps)
    unit = (decode_levels(payload, maps.shape) - payload["low"]) / max(
        payload["high"] - payload["low"], 1e-300
    )
    levels = quantize(np.clip(unit, 0, 1), 256)
    return [LUT[levels[i, y, x]].tolist() for i, y, x in probes]


def test_opens_from_disk_with_no_failed_request_and_a_first_view_under_5_mb(resnet_set, page):
    folders, target, written = resnet_set
    open_at(page, target, hash_=False)
    assert page.evaluate(LOADED) == 0
    assert page.problems() == []
    assert [src for src, ok in page.images() if not ok] == []
    loaded = page.loaded_urls()
    root = target.as_uri() + "/"
    assert all(url.startswith(root) for url in loaded), loaded
    sizes = sum((target / url[len(root) :]).stat().st_size for url in loaded)
    assert sizes == written.first_view_bytes  # what write_explorer says the first view costs
    assert sizes <= FIRST_VIEW_BYTES
    text = page.evaluate("document.body.innerText")
    assert WEIGHTS in text and NOTE in text and "min to max over the 32 held images" in text
    assert page.evaluate("document.querySelectorAll('canvas.map').length") == 32


def test_selecting_a_filter_shows_its_maps_within_300_ms(resnet_set, page):
    folders, target, _ = resnet_set
    open_at(page, target)
    times = {}
    # jumps no prefetch has loaded: by link (hash), by the layer and filter controls
    jumps = [("layer1.1.conv2", 41), ("layer2.0.downsample.0", 100), ("layer3.1.conv1", 200),
             ("layer4.1.conv2", 511), ("conv1", 63)]  # fmt: skip
    for layer, f in jumps:
        assert page.evaluate(LOADED) == 0  # the user looked at the maps (prefetch done) first
        page.evaluate(f"location.hash = 'layer={layer}&filter={f}'")
        times[f"{layer}/{f}"] = shown(page, layer, f)
    assert page.evaluate(LOADED) == 0
    page.evaluate("(() => { const s = document.getElementById('layer'); s.selectedIndex = 1;"
                  " s.dispatchEvent(new Event('change')); })()")  # fmt: skip
    times["layer1.0.conv1/63"] = shown(page, "layer1.0.conv1", 63)
    assert page.evaluate(LOADED) == 0
    page.evaluate("(() => { const i = document.getElementById('filter'); i.value = '7';"
                  " i.dispatchEvent(new Event('change')); })()")  # fmt: skip
    times["layer1.0.conv1/7"] = shown(page, "layer1.0.conv1", 7)
    # the keyboard, one key after another: next, previous, next and previous layer
    keys = [("ArrowRight", 39, "layer1.0.conv1", 8), ("j", 74, "layer1.0.conv1", 9),
            ("k", 75, "layer1.0.conv1", 8), ("ArrowLeft", 37, "layer1.0.conv1", 7),
            ("PageDown", 34, "layer1.0.conv2", 7), ("PageUp", 33, "layer1.0.conv1", 7)]  # fmt: skip
    for key, code, layer, f in keys:
        page.press_key(key, key_code=code)
        times[f"{key}: {layer}/{f}"] = shown(page, layer, f)
    assert page.problems() == []
    print("switch -> maps drawn, ms:", times)
    slow = {k: v for k, v in times.items() if v > SWITCH_MS}
    assert not slow, f"slower than {SWITCH_MS} ms: {slow}"
    # and what is drawn is that filter: sample pixels of several tiles against the .npy
    probes = [[0, 0, 0], [5, 10, 20], [31, 55, 55], [17, 33, 2]]
    assert page.evaluate(PIXELS % json.dumps(probes)) == expected_rgb(
        folders, "layer1.0.conv1", 7, probes
    )


def test_a_link_opens_its_filter(resnet_set, page):
    folders, target, _ = resnet_set
    open_at(page, target, "layer3.0.conv2", 17)
    state = page.evaluate("filterlensExplorer.state()")
    assert (state["layer"], state["filter"]) == ("layer3.0.conv2", 17)
    assert page.evaluate("document.getElementById('filter').value") == "17"
    probes = [[3, 0, 13], [30, 7, 7]]
    assert page.evaluate(PIXELS % json.dumps(probes)) == expected_rgb(
        folders, "layer3.0.conv2", 17, probes
    )


@pytest.mark.parametrize("zoom", ["1", "0.75", "1.5"])
def test_the_value_under_the_pointer_is_the_npy_value(resnet_set, page, zoom):
    folders, target, _ = resnet_set
    names = list(folders)
    open_at(page, target)
    for layer, f, tile, pixels in [
        ("conv1", 5, 0, [(0, 0), (1, 1), (100, 223), (223, 0), (57, 58), (9999, 9999)]),
        ("layer2.0.conv1", 99, 9, [(0, 0), (7, 8), (8, 7), (150, 149), (223, 223)]),
        ("layer4.0.conv2", 300, 31, [(31, 32), (32, 31), (200, 10)]),
    ]:
        page.evaluate(f"location.hash = 'layer={layer}&filter={f}'")
        shown(page, layer, f)
        page.evaluate(f"(() => {{ const z = document.getElementById('zoom'); z.value = '{zoom}';"
                      " z.dispatchEvent(new Event('change')); })()")  # fmt: skip
        rect = page.evaluate(
            f"(() => {{ const c = document.querySelectorAll('canvas.map')[{tile}];"
            " c.scrollIntoView({block: 'center'}); const r = c.getBoundingClientRect();"
            " return [r.left, r.top, r.width, r.height]; })()"
        )
        left, top, width, height = rect
        array = np.load(folders[names[tile]] / f"{layer}.npy")
        maps = np.stack([np.load(folders[n] / f"{layer}.npy", mmap_mode="r")[f] for n in names])
        span = float(maps.max() - maps.min())
        h, w = array.shape[1:]
        for py, px in pixels:  # display pixels of the tile, at the centre of each
            py, px = min(py, round(height) - 1), min(px, round(width) - 1)
            page.move_mouse(left + px + 0.5, top + py + 0.5)
            readout = page.evaluate(READOUT)
            y, x = nearest_index(h, round(height))[py], nearest_index(w, round(width))[px]
            assert (readout["image"], int(readout["y"]), int(readout["x"])) == (names[tile], y, x)
            assert readout["text"].startswith(f"{layer} · filter {f} · image {names[tile]}")
            value = float(array[f, y, x])
            assert abs(float(readout["value"]) - value) <= tolerance(value, span), (layer, py, px)
    assert page.problems() == []


def test_images_beyond_the_cap_are_listed_and_top_images_show_their_inputs(
    small, chromium, tmp_path
):
    folders, rows, target, _ = small
    held = list(folders)[:3]
    # a filter whose top images include one beyond the cap
    layer, f = next((r["layer"], int(r["filter"])) for r in rows if r["image"] not in held)
    with Browser(chromium, tmp_path / "profile") as browser:
        open_at(browser, target, layer, f)
        assert browser.problems() == []
        images = browser.images()
        assert images and all(ok for _, ok in images)
        assert browser.evaluate("document.querySelectorAll('canvas.map').length") == 3
        listed = browser.evaluate("document.getElementById('listed').textContent")
        assert "img003, img004" in listed and "explorer_max_images" in listed
        cards = browser.evaluate(
            "Array.from(document.querySelectorAll('#top li .name'), e => e.textContent)"
        )
        expected = [r["image"] for by in ("max", "mean") for r in rows
                    if (r["layer"], int(r["filter"]), r["by"]) == (layer, f, by)]  # fmt: skip
        assert cards == expected and set(cards) - set(held)
