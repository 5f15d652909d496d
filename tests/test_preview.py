"""The animated WebP preview: stills wrapped in WebP's animation container."""

import io

import numpy as np
from PIL import Image

from filterlens import preview

COLORS = [(255, 0, 0), (0, 200, 0), (0, 0, 255), (250, 250, 250)]


def test_animation_round_trip():
    stills = [preview.still_webp(Image.new("RGB", (21, 11), c)) for c in COLORS]
    data = preview.animated_webp(stills, (21, 11), 200)
    image = Image.open(io.BytesIO(data))
    assert image.n_frames == len(COLORS) and image.size == (21, 11)
    assert image.info["loop"] == 0
    for i, color in enumerate(COLORS):
        image.seek(i)
        pixels = np.asarray(image.convert("RGB"), dtype=int)
        assert image.info["duration"] == 200
        assert np.abs(pixels - color).max() < 24  # lossy, but the right color


def test_a_sheet_frame_fits_the_preview_and_names_its_layer():
    tall = Image.new("RGB", (300, 1200), (0, 0, 255))
    shown = preview.sheet_frame(tall, "layer1.0.conv1")
    assert shown.size == (preview.SIDE, preview.SIDE + preview.BAND)
    pixels = np.asarray(shown)
    blue = (pixels[: preview.SIDE] == (0, 0, 255)).all(axis=2)
    rows, cols = np.nonzero(blue)
    assert rows.min() == 0 and rows.max() == preview.SIDE - 1  # shrunk to fit, aspect kept
    assert abs((cols.max() - cols.min() + 1) - preview.SIDE / 4) <= 1  # centred, 1:4
    band = pixels[preview.SIDE :]
    assert band.max() > 200 and band.min() < 40  # light text on a dark band


def test_the_preview_shows_each_sheet_for_the_same_time():
    frames = [preview.sheet_frame(Image.new("RGB", (40, 40), c), "x") for c in COLORS]
    image = Image.open(io.BytesIO(preview.preview_webp(frames)))
    assert image.n_frames == len(COLORS)
    for i in range(len(COLORS)):
        image.seek(i)
        image.load()
        assert image.info["duration"] == preview.DURATION_MS
