"""A small animated WebP of a run's frames, for browsers: they do not play the lossless AVI.

Every frame of the video, in its order and at its rate, shrunk by a whole factor to at most
MAX_SIDE pixels (less for runs with very many frames), with a band under it naming the layer and
filter. Lossy: a preview, not data.

Each frame is encoded on its own as a still WebP and the stills are wrapped in WebP's animation
container (RIFF chunks VP8X, ANIM, then one ANMF per frame): twice as fast as libwebp's animation
encoder, which searches for differences between frames that filter maps do not have, and frames
are encoded one at a time, so memory stays flat however many there are.
"""

from __future__ import annotations

import io
import math
import struct
from typing import Iterable, Iterator

from PIL import Image

from .sheets import text_mask, tile

MAX_SIDE = 112
MIN_SIDE = 32
PIXEL_BUDGET = 80_000_000  # preview pixels of all frames together: the more frames, the smaller
BAND = 14
QUALITY = 70


def preview_size(frame_size: tuple[int, int], count: int) -> tuple[int, int]:
    """Size of a preview frame (without its band): a whole-factor reduction of `frame_size`."""
    fw, fh = frame_size
    affordable = math.sqrt(PIXEL_BUDGET / max(1, count))
    side = max(MIN_SIDE, min(MAX_SIDE, int(affordable)))
    k = max(1, math.ceil(max(fw, fh) / side))
    return math.ceil(fw / k), math.ceil(fh / k)


def preview_frame(frame: Image.Image, size: tuple[int, int], layer: str, index: int) -> Image.Image:
    """The frame shrunk to `size`, over a band that reads '<layer> #<index>'."""
    image = Image.new("RGB", (size[0], size[1] + BAND), (20, 20, 20))
    image.paste(tile(frame, size))
    x = 3
    for text in (layer, f" #{index}"):  # thousands of frames share a few dozen label parts
        mask = text_mask(text, 10)
        image.paste((240, 240, 240), (x, size[1] + (BAND - mask.height) // 2), mask)
        x += mask.width
    return image


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
