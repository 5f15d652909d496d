"""Contact sheets: grid layout, tiles in frames.tsv order, and what the colorbar states."""

import numpy as np
import pytest
from PIL import Image

from filterlens import sheets

LUT = np.stack([np.arange(256), 255 - np.arange(256), np.full(256, 60)], axis=1).astype(np.uint8)


def palette_frame(level: int, size=(64, 48)) -> Image.Image:
    image = Image.fromarray(np.full(size[::-1], level, np.uint8), mode="P")
    image.putpalette(LUT.tobytes())
    return image


@pytest.fixture
def layers():
    """Frames of two layers, layer a's filters out of numeric order: layer -> [(filter, frame)]."""
    return {
        layer: [(f, palette_frame(level=30 * f + (100 if layer == "b" else 0))) for f in filters]
        for layer, filters in (("a", [3, 0, 4, 1, 2, 6, 5]), ("b", [0, 1]))
    }


def draw(layers, layer, top=None, top_k=None):
    frames = layers[layer]
    grid = sheets.make_grid(len(frames), (64, 48))
    scale = sheets.scale_for("filter", layer, [0.0] * len(frames), [1.0] * len(frames), LUT)
    tiles = [sheets.tile(frame, grid.tile) for _, frame in frames]
    return frames, sheets.layer_sheet(tiles, [f for f, _ in frames], grid, f"m · i · {layer}",
                                      ["note"], scale, top, top_k)  # fmt: skip


def test_tiles_follow_frames_tsv(layers):
    frames, sheet = draw(layers, "a")
    assert [f for f, _ in frames] == [3, 0, 4, 1, 2, 6, 5]  # the table's order, not sorted
    assert sheet.grid.count == 7 and sheet.grid.columns == 3 and sheet.grid.rows == 3
    pixels = np.asarray(sheet.image)
    for i, (f, _) in enumerate(frames):
        left, top, right, bottom = sheet.tile_box(i)
        assert (pixels[top:bottom, left:right] == LUT[30 * f]).all(), f"tile {i} is not filter {f}"
    # row-major: tile 1 right of tile 0, tile 3 below tile 0
    assert sheet.tile_box(1)[0] > sheet.tile_box(0)[0] and sheet.tile_box(1)[1] == sheet.tile_box(0)[1]
    assert sheet.tile_box(3)[1] > sheet.tile_box(0)[1] and sheet.tile_box(3)[0] == sheet.tile_box(0)[0]
    # the cells after the last tile stay empty
    for i in (7, 8):
        left, top, right, bottom = sheet.tile_box(i)
        assert (pixels[top:bottom, left:right] == sheets.BACKGROUND).all()


def test_each_layer_gets_only_its_own_frames(layers):
    frames, sheet = draw(layers, "b")
    assert sheet.grid.count == 2
    pixels = np.asarray(sheet.image)
    for i, f in enumerate([0, 1]):
        left, top, right, bottom = sheet.tile_box(i)
        assert (pixels[top:bottom, left:right] == LUT[30 * f + 100]).all()


def test_top_filters_are_marked_around_their_tiles(layers):
    frames, sheet = draw(layers, "a", top={"mean": {4}, "max": {6}}, top_k=1)
    pixels = np.asarray(sheet.image)
    mean_tile = [f for f, _ in frames].index(4)
    left, top, right, bottom = sheet.tile_box(mean_tile)
    assert (pixels[top - 3, left:right] == sheets.MEAN_COLOR).all()  # frame above the tile
    max_tile = [f for f, _ in frames].index(6)
    left, top, right, bottom = sheet.tile_box(max_tile)
    band = pixels[bottom : bottom + sheet.grid.label, left:right].reshape(-1, 3)
    assert (band == sheets.MAX_COLOR).all(axis=1).mean() > 0.5  # the label band is blue
    # an unmarked tile has neither
    left, top, right, bottom = sheet.tile_box(0)
    assert (pixels[top - 3, left:right] == sheets.BACKGROUND).all()


def test_large_layers_stay_readable():
    grid = sheets.make_grid(512, (224, 224), block=32)  # 7x7 maps
    assert (grid.columns, grid.rows) == (23, 23)
    assert grid.tile == (28, 28)  # 224 / 8: the 7x7 maps keep sharp 4-pixel blocks
    assert grid.size[0] <= sheets.SHEET_WIDTH
    assert sheets.text_width("511", 11) <= grid.tile[0] - 6  # the index fits under its tile


def test_grid_shapes():
    assert sheets.make_grid(64, (224, 224)).tile == (112, 112)
    assert sheets.make_grid(4, (64, 48)).tile == (128, 96)  # small frames: whole-factor enlargement
    assert sheets.make_grid(1, (224, 224)).columns == 1
    with pytest.raises(ValueError):
        sheets.make_grid(0, (224, 224))


def test_tiles_from_every_frame_kind():
    p = palette_frame(0, (4, 4))
    p.paste(200, (0, 0, 2, 4))  # left half level 200
    tile = np.asarray(sheets.tile(p, (2, 2)))
    assert (tile[:, 0] == LUT[200]).all() and (tile[:, 1] == LUT[0]).all()
    sixteen = Image.fromarray(np.full((4, 4), 0xAB00, "<u2"))  # mode I;16
    assert (np.asarray(sheets.tile(sixteen, (2, 2))) == 0xAB).all()
    rgb = Image.new("RGB", (4, 4), (10, 20, 30))
    assert np.asarray(sheets.tile(rgb, (8, 8))).shape == (8, 8, 3)


def test_filter_normalization_prints_no_shared_values():
    scale = sheets.scale_for("filter", "conv1", [-1.0, 0.0], [1.0, 3.0], LUT)
    assert "own" in scale.title
    assert not any(ch.isdigit() for _, text in scale.ticks for ch in text)


def test_layer_normalization_prints_its_range():
    scale = sheets.scale_for("layer", "conv1", [-0.4] * 3, [0.66] * 3, LUT)
    texts = [text for _, text in scale.ticks]
    assert texts[0] == "-0.4" and texts[-1] == "0.66" and "0" in texts
    positions = [pos for pos, _ in scale.ticks]
    assert positions == sorted(positions) and positions[0] == 0.0 and positions[-1] == 1.0
    zero = positions[texts.index("0")]
    assert zero == pytest.approx(0.4 / 1.06)
    assert "all 3 filters of conv1" in scale.title


def test_global_and_clipped_scales_say_so():
    scale = sheets.scale_for("global", "conv1", [0.0] * 2, [2.0] * 2, LUT, clip=[1, 99])
    assert "every layer" in scale.title and "percentiles 1-99" in scale.title


def test_equalized_ticks_sit_at_even_colors():
    cdf = np.sqrt((np.arange(1024) + 0.5) / 1024)  # most values low: colors stretch them
    ticks = sheets.value_ticks(0.0, 1.0, cdf)
    assert [pos for pos, _ in ticks] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert [text for _, text in ticks][2] == "0.25"  # color 0.5 stands for value 0.5**2


def test_nice_ticks():
    assert sheets.nice_ticks(-0.4, 0.66) == [0.0, 0.5]
    assert sheets.nice_ticks(0.0, 10.0) == [0.0, 2.5, 5.0, 7.5, 10.0]
    assert sheets.nice_ticks(1.0, 1.0) == []


def marked_sheet(cmap: str):
    """Every color of `cmap` as a tile, plus blocky noise tiles of its darkest, lightest and
    middle colors mixed, each marked as a top filter by mean and by max."""
    from filterlens.render import palette

    lut = palette(cmap)
    worst = np.argsort(np.abs(sheets.luminance(lut) - 0.18))[:8]  # nearest the hardest gray
    choices = np.concatenate([worst, [0, 255]])
    rng = np.random.default_rng(0)
    noise = [lut[rng.choice(choices, (6, 8)).repeat(8, 0).repeat(8, 1)] for _ in range(8)]
    arrays = [np.full((48, 64, 3), color, np.uint8) for color in lut] + noise
    tiles = [Image.fromarray(a) for a in arrays]
    grid = sheets.make_grid(len(tiles), (64, 48), width=1536)
    assert grid.tile == (64, 48)
    scale = sheets.scale_for("filter", "x", [0.0] * len(tiles), [1.0] * len(tiles), lut)
    marks = {i: {"mean", "max"} for i in range(len(tiles))}
    sheet = sheets.compose_sheet("t", [], grid, tiles, [str(i) for i in range(len(tiles))], scale,
                                 marks, top_k=8)  # fmt: skip
    return sheet, lut


def pairs_contrast(pixels, a, b):
    """Contrast between the pixels at index a and those at index b (same shapes)."""
    return sheets.contrast(pixels[a].reshape(-1, 3), pixels[b].reshape(-1, 3))


@pytest.mark.parametrize("cmap", ["magma", "gray"])
def test_top_filter_marks_contrast_with_every_tile_color(cmap):
    sheet, lut = marked_sheet(cmap)
    p = np.asarray(sheet.image)
    label = sheet.grid.label
    worst = {}
    for i in range(sheet.grid.count):
        l, t, r, b = sheet.tile_box(i)
        # the mark's pixels that touch the tile: frame ring above, left, right; band row below
        worst.setdefault("tile", []).extend([
            pairs_contrast(p, (t - 1, slice(l, r)), (t, slice(l, r))).min(),
            pairs_contrast(p, (slice(t, b), l - 1), (slice(t, b), l)).min(),
            pairs_contrast(p, (slice(t, b), r), (slice(t, b), r - 1)).min(),
            pairs_contrast(p, (b, slice(l, r)), (b - 1, slice(l, r))).min(),
        ])
        # the ring beside the label band, the band under its top line, the frame outside the
        # ring, and the page outside the frame
        band = (slice(b + 1, b + label), slice(l, r))
        worst.setdefault("band", []).extend([
            pairs_contrast(p, (slice(b, b + label), l - 1), (slice(b, b + label), l)).min(),
            pairs_contrast(p, (b + 1, slice(l, r)), (b, slice(l, r))).min(),
        ])
        worst.setdefault("frame", []).append(
            pairs_contrast(p, (slice(t - 1, b + label + 1), l - 2), (slice(t - 1, b + label + 1), l - 1)).min()
        )
        if (p[t - 5, l:r] == sheets.BACKGROUND).all():  # not another marked tile's frame
            worst["frame"].append(pairs_contrast(p, (t - 5, slice(l, r)), (t - 4, slice(l, r))).min())
        # label text (white pixels of the band) against the band
        text = p[band].reshape(-1, 3)
        inked = text[(text != sheets.MAX_COLOR).any(axis=1)]
        assert len(inked) > 0
        worst.setdefault("text", []).append(sheets.contrast(inked.max(axis=0), np.array(sheets.MAX_COLOR)))
    assert min(worst["tile"]) >= 3.0, min(worst["tile"])
    assert min(worst["band"]) >= 3.0 and min(worst["frame"]) >= 3.0
    assert min(worst["text"]) >= 4.5  # WCAG AA for small text
    assert (p[sheet.tile_box(0)[1] - 3, sheet.tile_box(0)[0]] == sheets.MEAN_COLOR).all()


@pytest.mark.parametrize("cmap", ["magma", "gray"])
def test_no_single_mark_color_would_do(cmap):
    """Why the marks meet tiles through a dark-or-light line: the marks' own colors fall below
    3:1 against some colors of these maps."""
    from filterlens.render import palette

    lut = palette(cmap)
    for color in (sheets.MEAN_COLOR, sheets.MAX_COLOR, sheets.RING_DARK, sheets.RING_LIGHT):
        assert sheets.contrast(lut, np.array(color)).min() < 3.0


def test_wcag_contrast_values():
    white, black = np.array([255, 255, 255]), np.array([0, 0, 0])
    assert sheets.contrast(white, black) == pytest.approx(21.0)
    assert sheets.contrast(np.array([119, 119, 119]), white) == pytest.approx(4.48, abs=0.01)
