"""Frames: colormap correctness, quantization, nearest upsampling, palette/RGB/16-bit PNGs."""

import io

import matplotlib
import numpy as np
import pytest
from PIL import Image

from filterlens import png, render


def decode(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


def test_palette_is_matplotlibs_colormap_at_256_levels():
    lut = render.palette("magma")
    expected = matplotlib.colormaps["magma"](np.arange(256) / 255)[:, :3]
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    assert np.abs(lut / 255 - expected).max() <= 0.5 / 255 + 1e-12
    assert lut[0].tolist() == [0, 0, 4] and lut[-1].tolist() == [252, 253, 191]


def test_rendered_pixels_have_the_colormaps_color_for_their_value():
    lut = render.palette("viridis")
    unit = np.array([[0.0, 0.5], [0.25, 1.0]], dtype=np.float32)
    index = render.levels_at_size(unit, (2, 2), "nearest", 256)
    rgb = np.asarray(decode(png.palette_png(index, lut)).convert("RGB"))
    cmap = matplotlib.colormaps["viridis"]
    for (y, x), value in np.ndenumerate(unit):
        want = np.round(np.array(cmap(round(value * 255) / 255)[:3]) * 255)
        assert rgb[y, x].tolist() == want.tolist()


def test_quantize_rounds_to_nearest_level():
    unit = np.array([0.0, 0.5 / 255, 0.49 / 255, 1.0, 0.999], dtype=np.float32)
    assert render.quantize(unit, 256).tolist() == [0, 1, 0, 255, 255]
    assert render.quantize(np.array([0.5]), 65536).tolist() == [32768]


def test_nearest_upsampling_repeats_source_pixels_exactly():
    levels = np.arange(6, dtype=np.uint8).reshape(2, 3)
    out = render.resize_levels(levels, (6, 4))  # (width, height): 2x each way
    assert out.shape == (4, 6)
    assert out.tolist() == [[0, 0, 1, 1, 2, 2]] * 2 + [[3, 3, 4, 4, 5, 5]] * 2
    # a non-integer factor still takes every value from a source pixel
    odd = render.resize_levels(levels, (7, 5))
    assert set(np.unique(odd)) == set(range(6)) and odd.shape == (5, 7)


def test_bilinear_interpolates_between_pixels():
    unit = np.array([[0.0, 1.0]], dtype=np.float32)
    out = render.levels_at_size(unit, (4, 1), "bilinear", 256)
    assert out[0, 0] < out[0, 1] < out[0, 2] < out[0, 3]
    assert set(out[0].tolist()) - {0, 255}  # values in between exist


def test_palette_png_is_8bit_palette_and_lossless():
    lut = render.palette("gray")
    index = np.arange(256, dtype=np.uint8).reshape(16, 16)
    image = decode(png.palette_png(index, lut))
    assert image.mode == "P"
    assert np.array_equal(np.asarray(image), index)


def test_16bit_png_round_trips():
    levels = np.array([[0, 1, 32768], [65534, 65535, 12345]], dtype=np.uint16)
    image = decode(png.gray16_png(levels))
    assert image.mode in ("I;16", "I")
    assert np.array_equal(np.asarray(image).astype(np.uint16), levels)


def test_overlay_blends_the_heatmap_over_the_input():
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[255] = (255, 0, 0)
    index = np.full((2, 2), 255, dtype=np.uint8)
    background = Image.new("RGB", (2, 2), (0, 0, 255))
    out = np.asarray(render.rgb_frame(index, lut, background, alpha=0.25))
    assert out[0, 0].tolist() == [64, 0, 191]  # 0.25 red + 0.75 blue, rounded


def test_legend_draws_text_in_the_corner_only():
    lut = render.palette("viridis")
    index = np.zeros((120, 160), dtype=np.uint8)
    plain = np.asarray(render.rgb_frame(index, lut))
    legend = np.asarray(render.rgb_frame(index, lut, legend="conv1 #3"))
    changed = np.argwhere((plain != legend).any(axis=2))
    assert len(changed) > 50  # text and its box were drawn
    assert changed[:, 0].max() < 60 and changed[:, 1].max() < 120
    assert (legend > 200).all(axis=2).any()  # light text (antialiased)


@pytest.mark.parametrize("levels", [256, 65536])
def test_constant_map_renders_flat(levels):
    unit = np.zeros((5, 5), dtype=np.float32)
    out = render.levels_at_size(unit, (10, 10), "bilinear", levels)
    assert np.ptp(out) == 0


def test_png_bytes_are_deterministic():
    lut = render.palette("viridis")
    index = np.random.default_rng(0).integers(0, 256, (30, 30)).astype(np.uint8)
    one = png.palette_png(index, lut)
    two = png.palette_png(index.copy(), lut.copy())
    assert one == two and b"tIME" not in one
