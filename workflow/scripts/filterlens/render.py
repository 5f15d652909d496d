"""Turn unit-scaled feature maps into frames: colormapped palette PNGs, RGB PNGs with an overlay
or legend, or 16-bit grayscale PNGs.

Plain colormapped frames are palette PNGs: the 256 colors of the colormap in the palette and one
byte per pixel, the cheapest exact form. Nearest upsampling repeats source pixels (honest pixels);
bilinear interpolates the unit-scaled values before they are quantized.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image, ImageDraw, ImageFont



def palette(cmap: str) -> np.ndarray:
    """The colormap sampled at 256 levels as uint8 RGB (256 x 3), as matplotlib renders it."""
    import matplotlib  # noqa: PLC0415 - only the palette job pays for matplotlib

    rgba = matplotlib.colormaps[cmap](np.linspace(0.0, 1.0, 256))
    return np.round(rgba[:, :3] * 255).astype(np.uint8)


def quantize(unit: np.ndarray, levels: int) -> np.ndarray:
    """Unit-scaled values to integer levels 0..levels-1, rounding to nearest."""
    dtype = np.uint8 if levels <= 256 else np.uint16
    return np.floor(unit.astype(np.float64) * (levels - 1) + 0.5).clip(0, levels - 1).astype(dtype)


@functools.lru_cache(maxsize=16)
def nearest_index(src: int, dst: int) -> np.ndarray:
    """Source index of each destination pixel for nearest-neighbour resizing (pixel centers)."""
    return np.minimum(((np.arange(dst) + 0.5) * src / dst).astype(np.intp), src - 1)


def resize_levels(levels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an integer map to size (width, height)."""
    h, w = levels.shape
    # two 1-d takes are about 5x faster than one 2-d fancy index
    return levels.take(nearest_index(h, size[1]), axis=0).take(nearest_index(w, size[0]), axis=1)


def resize_unit(unit: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a unit-scaled float map to size (width, height)."""
    image = Image.fromarray(unit.astype(np.float32), mode="F")
    return np.asarray(image.resize(size, Image.Resampling.BILINEAR), dtype=np.float32)


def levels_at_size(unit: np.ndarray, size, resample: str, levels: int) -> np.ndarray:
    if resample == "nearest":
        return resize_levels(quantize(unit, levels), size)
    return quantize(np.clip(resize_unit(unit, size), 0.0, 1.0), levels)


def rgb_frame(
    index: np.ndarray,
    lut: np.ndarray,
    background: Image.Image | None = None,
    alpha: float = 0.5,
    legend: str | None = None,
) -> Image.Image:
    """An RGB frame: the colormapped map, blended over `background`, with an optional legend."""
    rgb = lut[index]
    if background is not None:
        base = np.asarray(background.convert("RGB"), dtype=np.float64)
        rgb = np.floor((1.0 - alpha) * base + alpha * rgb + 0.5).astype(np.uint8)
    image = Image.fromarray(rgb, mode="RGB")
    if legend:
        draw_legend(image, legend)
    return image


def draw_legend(image: Image.Image, text: str) -> None:
    """Write `text` in white on a black box in the top-left corner."""
    size = max(9, image.height // 18)
    font = ImageFont.load_default(size=size)
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    pad = max(2, size // 4)
    draw.rectangle((0, 0, right - left + 2 * pad, bottom - top + 2 * pad), fill=(0, 0, 0))
    draw.text((pad - left, pad - top), text, font=font, fill=(255, 255, 255))
