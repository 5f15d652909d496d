"""A small animated WebP of a run for browsers, which do not play the lossless AVI: the run's
contact sheets, one layer after the other, each shrunk to fit SIDE x SIDE pixels with a band under
it naming the layer. Lossy: a preview, not data. Made from the sheets while they are in memory,
so it costs a few milliseconds per layer, however many frames the run has.

Each frame is encoded on its own as a still WebP and the stills are wrapped in WebP's animation
container (RIFF chunks VP8X, ANIM, then one ANMF per frame).
"""

from __future__ import annotations

import io
import struct
from typing import Iterable, Iterator

from PIL import Image

from .sheets import BACKGROUND, text_mask

SIDE = 480
BAND = 18
QUALITY = 70
DURATION_MS = 1500  # per layer


def sheet_frame(sheet: Image.Image, layer: str) -> Image.Image:
    """`sheet` shrunk to fit SIDE x SIDE, centred on a SIDE x (SIDE + BAND) frame, over a band
    that names `layer`."""
    scale = min(1.0, SIDE / sheet.width, SIDE / sheet.height)
    size = (max(1, round(sheet.width * scale)), max(1, round(sheet.height * scale)))
    small = sheet.convert("RGB").resize(size, Image.Resampling.BOX)
    frame = Image.new("RGB", (SIDE, SIDE + BAND), BACKGROUND)
    frame.paste(small, ((SIDE - size[0]) // 2, (SIDE - size[1]) // 2))
    frame.paste((20, 20, 20), (0, SIDE, SIDE, SIDE + BAND))
    mask = text_mask(layer, 12)
    frame.paste((240, 240, 240), (6, SIDE + (BAND - mask.height) // 2), mask)
    return frame


def preview_webp(frames: Iterable[Image.Image]) -> bytes:
    """The animation of `frames` (each SIDE x (SIDE + BAND), from sheet_frame), looping."""
    return animated_webp((still_webp(f) for f in frames), (SIDE, SIDE + BAND), DURATION_MS)


def still_webp(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="WEBP", quality=QUALITY, method=0)
    return buffer.getvalue()


def _chunk(fourcc: bytes, payload: bytes) -> bytes:
    pad = b"\0" if len(payload) % 2 else b""
    return fourcc + struct.pack("<I", len(payload)) + payload + pad


def _chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(fourcc, payload) of each chunk of a WebP file."""
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise ValueError("not a WebP file")
    pos = 12
    while pos + 8 <= len(data):
        fourcc, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        yield fourcc, data[pos + 8 : pos + 8 + size]
        pos += 8 + size + size % 2


def _u24(value: int) -> bytes:
    return struct.pack("<I", value)[:3]


def animated_webp(stills: Iterable[bytes], size: tuple[int, int], duration_ms: int) -> bytes:
    """Wrap still WebP images of one `size` into an endlessly looping animation."""
    frames = []
    for still in stills:
        image = b"".join(
            _chunk(fourcc, payload) for fourcc, payload in _chunks(still)
            if fourcc in (b"ALPH", b"VP8 ", b"VP8L")
        )  # fmt: skip
        header = _u24(0) + _u24(0) + _u24(size[0] - 1) + _u24(size[1] - 1)
        flags = 0b10  # do not blend with the previous frame; no disposal
        frames.append(_chunk(b"ANMF", header + _u24(duration_ms) + bytes([flags]) + image))
    if not frames:
        raise ValueError("a preview needs at least one frame")
    vp8x = bytes([0b10]) + b"\0\0\0" + _u24(size[0] - 1) + _u24(size[1] - 1)  # animation flag
    anim = struct.pack("<IH", 0xFF000000, 0)  # opaque black background, loop forever
    body = b"WEBP" + _chunk(b"VP8X", vp8x) + _chunk(b"ANIM", anim) + b"".join(frames)
    return b"RIFF" + struct.pack("<I", len(body)) + body
