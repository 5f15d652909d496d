"""PNG files written straight from arrays (frames: palette, 16-bit gray, RGB), without ancillary
chunks.

Rows are stored unfiltered and deflated with zlib at level 1: the same pixels always give the same
bytes, and writing a frame costs little more than the compression itself (about half of what
Pillow's encoder takes for the small frames of a run). Pillow reads them back like any PNG, and they are the AVI's
packets as they are.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
PALETTE, GRAY, RGB = 3, 0, 2  # PNG color types


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _encode(pixels: np.ndarray, color_type: int, bit_depth: int, plte: bytes | None,
            strategy: int) -> bytes:
    """`pixels`: H x W (x channels) of the on-disk sample type (uint8, or big-endian uint16)."""
    height, width = pixels.shape[:2]
    rows = pixels.reshape(height, -1).view(np.uint8)
    raw = np.zeros((height, rows.shape[1] + 1), dtype=np.uint8)  # filter byte 0: none
    raw[:, 1:] = rows
    packer = zlib.compressobj(1, zlib.DEFLATED, 15, 8, strategy)
    data = packer.compress(raw.tobytes()) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"".join([
        SIGNATURE, _chunk(b"IHDR", header), _chunk(b"PLTE", plte) if plte else b"",
        _chunk(b"IDAT", data), _chunk(b"IEND", b""),
    ])  # fmt: skip


def palette_png(index: np.ndarray, lut: np.ndarray) -> bytes:
    """An 8-bit palette PNG of `index` (H x W, uint8) with the colors `lut` (256 x 3, uint8)."""
    plte = np.ascontiguousarray(lut, dtype=np.uint8).tobytes()
    return _encode(np.ascontiguousarray(index, dtype=np.uint8), PALETTE, 8, plte,
                   zlib.Z_DEFAULT_STRATEGY)  # fmt: skip


def gray16_png(levels: np.ndarray) -> bytes:
    """A 16-bit grayscale PNG of `levels` (H x W, 0..65535)."""
    return _encode(np.ascontiguousarray(levels, dtype=">u2"), GRAY, 16, None,
                   zlib.Z_DEFAULT_STRATEGY)  # fmt: skip


def rgb_png(pixels: np.ndarray) -> bytes:
    """An 8-bit RGB PNG of `pixels` (H x W x 3, uint8)."""
    return _encode(np.ascontiguousarray(pixels, dtype=np.uint8), RGB, 8, None,
                   zlib.Z_DEFAULT_STRATEGY)  # fmt: skip
