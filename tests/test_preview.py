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


def test_preview_frame_has_a_label_band():
    frame = Image.fromarray(np.full((224, 224), 255, np.uint8), "P")
    frame.putpalette(bytes(range(256)) * 3)
    shown = preview.preview_frame(frame, (112, 112), "layer1.0.conv1", 7)
    assert shown.size == (112, 112 + preview.BAND)
    band = np.asarray(shown)[112:]
    assert band.max() > 200 and band.min() < 40  # light text on a dark band


def test_preview_size_is_a_whole_factor_and_shrinks_with_many_frames():
    assert preview.preview_size((224, 224), 4800) == (112, 112)
    assert preview.preview_size((64, 48), 8) == (64, 48)
    w, h = preview.preview_size((224, 224), 30000)
    assert w == h and 224 % (224 // w) == 0 and w < 112
