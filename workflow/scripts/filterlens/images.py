"""Load input images robustly: 8-bit RGB plus log notes, or a clear ImageInputError.

Pure Pillow + numpy (no torch), so it can be tested and reused without a model.

Processed, each with a note for the log where something was changed:
  * 1-bit, grayscale (L), palette (P), YCbCr: converted to RGB.
  * Any transparency (RGBA, LA, PA, palette or RGB/L with a transparent colour):
    composited onto ``background`` (white by default), because CNNs take no alpha.
  * CMYK (e.g. print JPEGs): converted by Pillow's formula; ICC profiles are ignored.
  * 16-bit grayscale (I;16*), and 32-bit integer (I) holding values in 0..65535:
    scaled by 255/65535, so 65535 -> 255 (not clipped).  16-bit RGB PNGs are already
    reduced to 8 bits per channel by Pillow (high byte, so 65535 -> 255 as well).
  * 32-bit float (F) with all values in 0..1: scaled by 255.
  * EXIF orientation 2..8: applied with ImageOps.exif_transpose, so it is upright.
  * Animated GIF / multi-page files: the first frame is used.
  * Any size from 1x1 up to ``max_pixels``; resizing is left to ``preprocess.prepare``.

Decoded only from the raster formats in ``FORMATS`` (PNG, JPEG, BMP, GIF, TIFF,
WebP): Pillow tries no other plugin, so no file reaches an external interpreter
(Pillow's EPS plugin runs Ghostscript) or a codec filterlens does not need. A TIFF is
decoded only with a common compression (``TIFF_COMPRESSIONS``), never with one of
libtiff's rarely used decoders.

Refused with ImageInputError (message: file, reason, fix): missing path, directory,
empty file, content in another format (named from its first bytes, e.g. an EPS or PDF
named .jpg), content that is not an image (e.g. text named .jpg), truncated or corrupt
data (always fully decoded, never padded), more pixels than ``max_pixels`` (checked
from the header before decoding), I/F images whose value range is ambiguous, and
other pixel modes (LAB, HSV, ...).
"""

from __future__ import annotations

import os
import re
import struct
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageFile, ImageOps


# 50 MP: above nearly every camera photo, ~150 MiB once decoded as RGB, and below
# Pillow's own warning threshold (~89.5 MP), so Pillow stays quiet by default.
DEFAULT_MAX_PIXELS = 50_000_000
MAX_PIXELS_CONFIG_KEY = "max_image_pixels"

# The formats filterlens decodes, Pillow's name -> the name messages use. Image.open
# tries only these plugins; config.IMAGE_SUFFIXES lists their file name suffixes. A
# JPEG holding several pictures (MPO, from stereo cameras) is read as its first one.
FORMATS = {
    "PNG": "PNG",
    "JPEG": "JPEG",
    "BMP": "BMP",
    "GIF": "GIF",
    "TIFF": "TIFF",
    "WEBP": "WebP",
}

# TIFF compressions handed to libtiff: the common ones. Old-style JPEG (6), ThunderScan,
# SGILog and CCITT RLEW are rare, and libtiff's decoders for them have the longest
# record of security fixes. Pillow refuses codes it does not know (PixarLog, LERC).
TIFF_COMPRESSIONS = {
    1: "none",
    2: "CCITT RLE",
    3: "CCITT Group 3",
    4: "CCITT Group 4",
    5: "LZW",
    7: "JPEG",
    8: "Deflate",
    32773: "PackBits",
    32946: "Deflate",
    34925: "LZMA",
    50000: "Zstandard",
    50001: "WebP",
}
_REFUSED_TIFF_COMPRESSIONS = {
    6: "old-style JPEG",
    32771: "CCITT RLEW",
    32809: "ThunderScan",
    34676: "SGILog",
    34677: "SGILog24",
}
_TIFF_COMPRESSION_TAG = 259

# Modes Image.convert("RGB") turns into correct colours; others (LAB, HSV) are refused.
_CONVERTIBLE_MODES = {"1", "L", "P", "RGB", "RGBX", "YCbCr", "CMYK"}
_HIGH_DEPTH_MODES = {"I", "I;16", "I;16L", "I;16B", "I;16N", "F"}

# What Pillow raises on corrupt or truncated data, depending on format and codec.
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    IndexError,
    EOFError,
    TypeError,
    struct.error,
)


class ImageInputError(ValueError):
    """An input image cannot be used; the message names the file, reason and fix."""


def _refuse(path, reason: str, fix: str | None = None) -> ImageInputError:
    """Build an ImageInputError whose message reads '<file>: <reason>; <fix>'."""
    return ImageInputError(f"{os.fspath(path)}: {reason}" + (f"; {fix}" if fix else ""))


def check_header(path: str | os.PathLike, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """The checks that need no decoding: a non-empty regular file, in an allowed raster format,
    with no more pixels than ``max_pixels``. Cheap (the header only), so the workflow runs them at
    start-up for every image it is about to extract; load_image also decodes."""
    _check_file(path)
    with _open(path, max_pixels) as probe:
        _check_pixels(path, probe.size, max_pixels)
        _check_tiff_compression(path, probe)


def check_headers(files: dict[str, str], max_pixels: int) -> None:
    """check_header for every image of `files` (name -> file); one ImageInputError that lists
    every image that fails, so that a set with several bad files is fixed in one go."""
    problems = []
    for name, path in files.items():
        try:
            check_header(path, max_pixels=max_pixels)
        except ImageInputError as err:
            problems.append(f"  image {name}: {err}")
    if problems:
        raise ImageInputError(
            f"{len(problems)} of the images to extract cannot be used; nothing was run. Fix or "
            "remove them (a folder's images are named <key>_<file stem>):\n" + "\n".join(problems)
        )


def check_loads(files: dict[str, str], max_pixels: int) -> None:
    """load_image for every image of `files`, listing every image that fails in one error."""
    problems = []
    for name, path in files.items():
        try:
            load_image(path, max_pixels=max_pixels)
        except ImageInputError as err:
            problems.append(f"  image {name}: {err}")
    if problems:
        raise ImageInputError(
            f"{len(problems)} of the {len(files)} images of this batch cannot be used; the batch "
            "was stopped before any model work, and nothing of it was written. Fix or remove:\n"
            + "\n".join(problems)
        )


def load_image(
    path: str | os.PathLike,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    background: tuple[int, int, int] = (255, 255, 255),
) -> tuple[Image.Image, list[str]]:
    """Read ``path`` as an upright 8-bit RGB image plus notes on what was changed.

    ``max_pixels`` caps width x height as read from the header; ``background`` fills
    transparent areas.  Raises ImageInputError for anything it cannot load faithfully.
    """
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        # That flag makes Pillow pad truncated files with grey instead of failing.
        raise RuntimeError(
            "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is set; filterlens will not read "
            "images while truncated files would be silently padded"
        )
    check_header(path, max_pixels=max_pixels)
    with _open(path, max_pixels) as probe:
        # Cheap structural check without decoding pixels; for PNG it also catches a
        # missing tail that a full decode would not notice.
        _decoding(path, probe.verify)
    with _open(path, max_pixels) as image:  # verify() leaves the image unusable
        notes = _first_frame_note(path, image)
        _decoding(path, image.load)
        image, oriented = _upright(image)
        rgb, converted = _to_rgb(path, image, background)
    return rgb, notes + oriented + converted


def _check_file(path) -> None:
    """Refuse paths that are not a non-empty regular file, before Pillow sees them."""
    p = Path(path)
    if not p.exists():
        raise _refuse(path, "file does not exist", "check the path in the config")
    if p.is_dir():
        raise _refuse(
            path, "is a directory, not an image file", "point to the image inside it"
        )
    if not p.is_file():
        raise _refuse(path, "is not a regular file")
    if p.stat().st_size == 0:
        raise _refuse(path, "file is empty (0 bytes)", "re-export or re-download it")


def _open(path, max_pixels: int) -> Image.Image:
    """Open lazily (header only), trying the allowed plugins only; Pillow's errors
    become ImageInputError."""
    try:
        return Image.open(path, formats=list(FORMATS))
    except Image.UnidentifiedImageError:
        raise _unidentified(path) from None
    except Image.DecompressionBombError as exc:
        # Pillow's own guard (2 x PIL.Image.MAX_IMAGE_PIXELS) fires inside Image.open.
        raise _refuse(
            path,
            f"refused before decoding by Pillow's decompression-bomb guard: {exc} "
            f"(filterlens limit: {max_pixels:,} pixels)",
            "use a smaller image; Pillow's limit also caps `max_image_pixels`",
        ) from None
    except _DECODE_ERRORS as exc:
        raise _refuse(path, f"cannot be read: {exc}") from exc


def _unidentified(path) -> ImageInputError:
    """The refusal of a file no allowed plugin opened, naming what it really is."""
    with open(path, "rb") as handle:
        head = handle.read(4096)
    other = identify_format(head)
    if other:
        return _refuse(
            path,
            f"is {other} file, not a raster image format filterlens reads "
            f"(allowed: {', '.join(FORMATS.values())})",
            "convert it to PNG",
        )
    allowed = _accepting_plugin(head, FORMATS)
    if allowed:
        return _refuse(
            path,
            f"starts like a {FORMATS[allowed]} file, but Pillow cannot read its header "
            "(a variant it does not support, or corrupt data)",
            "re-export or re-download the file",
        )
    hint = " (it starts with plain text, e.g. an HTML page)" if _is_text(head) else ""
    names = list(FORMATS.values())
    return _refuse(
        path,
        f"content is not an image format filterlens reads{hint}",
        f"check it really is a {', '.join(names[:-1])} or {names[-1]} image; a file "
        "extension alone does not make one",
    )


# Names for formats told by their first bytes; Pillow's own names for the others.
_NAMES = {
    "EPS": "an EPS (Encapsulated PostScript)",
    "ICO": "an ICO (Windows icon)",
    "CUR": "a CUR (Windows cursor)",
    "JPEG2000": "a JPEG 2000",
    "AVIF": "an AVIF",
    "PSD": "a PSD (Adobe Photoshop)",
    "PPM": "a Netpbm (PBM/PGM/PPM)",
    "FITS": "a FITS (astronomy data)",
}
_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs")
_SVG = re.compile(rb"<svg[\s>]")


def identify_format(head: bytes) -> str | None:
    """The format, other than those in FORMATS, of a file starting with ``head`` (its
    first 4 KiB), with its article: 'an EPS (Encapsulated PostScript)'; None if unknown.

    Looks at the bytes only (Pillow's plugins are asked through their ``_accept`` tests,
    which open nothing), so it is safe on any file.
    """
    first_line = head.split(b"\n", 1)[0]
    if head.startswith(b"\xc5\xd0\xd3\xc6") or (
        head.startswith(b"%!PS") and b"EPSF" in first_line
    ):
        return _NAMES["EPS"]
    if head.startswith(b"%!"):
        return "a PostScript"
    if head.startswith(b"%PDF-"):
        return "a PDF"
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<") and _SVG.search(head):
        return "an SVG (Scalable Vector Graphics)"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "a HEIC/HEIF"
    if _accepting_plugin(head, FORMATS):
        return None
    name = _accepting_plugin(head)
    if name is None:
        return None
    description = getattr(Image.OPEN[name][0], "format_description", None)
    article = "an" if name[0] in "AEFHILMNORSX" else "a"
    return _NAMES.get(name) or f"{article} {name}" + (
        f" ({description})" if description else ""
    )


def _accepting_plugin(head: bytes, among=None) -> str | None:
    """Pillow's name of the first plugin (of ``among``, default all) whose ``_accept``
    test takes the 16 bytes Image.open tests; such a test only compares bytes."""
    Image.init()
    for name, (_factory, accept) in Image.OPEN.items():
        if accept is None or (among is not None and name not in among):
            continue
        try:
            accepted = (
                accept(head[:16]) is True
            )  # a str result is a warning, not a match
        except Exception:  # noqa: BLE001 - a failed byte test is no match
            accepted = False
        # An icon or cursor lists at least one picture; a plain Targa file also starts
        # with the cursor's 00 00 02 00, then zeros.
        if accepted and not (name in ("ICO", "CUR") and head[4:6] == b"\0\0"):
            return name
    return None


def _is_text(head: bytes) -> bool:
    """True for ASCII text; image headers contain binary bytes."""
    return head[:512].isascii() and b"\0" not in head[:512]


def _check_pixels(path, size: tuple[int, int], max_pixels: int) -> None:
    """Refuse images whose header declares over ``max_pixels`` (decompression bombs)."""
    width, height = size
    pixels = width * height
    if pixels > max_pixels:
        raise _refuse(
            path,
            f"image is {width}x{height} = {pixels:,} pixels, over the limit of "
            f"{max_pixels:,} pixels (refused before decoding, as a possible "
            "decompression bomb)",
            f"if the image is trusted, raise `{MAX_PIXELS_CONFIG_KEY}` in the config "
            f"to at least {pixels:,}, or downscale the image",
        )


def _check_tiff_compression(path, image: Image.Image) -> None:
    """Refuse a TIFF whose compression would reach a rarely used libtiff decoder."""
    if image.format != "TIFF":
        return
    code = image.tag_v2.get(_TIFF_COMPRESSION_TAG, 1)
    if code not in TIFF_COMPRESSIONS:
        name = _REFUSED_TIFF_COMPRESSIONS.get(code, "unknown")
        raise _refuse(
            path,
            f"is a TIFF with compression {code} ({name}), which filterlens does not "
            f"decode (allowed: {', '.join(sorted(set(TIFF_COMPRESSIONS.values())))})",
            "save it again as PNG, or as TIFF with LZW or Deflate compression",
        )


def _decoding(path, step):
    """Run a Pillow read step; report corrupt or truncated data as ImageInputError."""
    try:
        return step()
    except _DECODE_ERRORS as exc:
        raise _refuse(
            path,
            f"image data is truncated or corrupt ({type(exc).__name__}: {exc})",
            "re-export or re-download the file",
        ) from exc


def _first_frame_note(path, image: Image.Image) -> list[str]:
    """Note multi-frame files; Image.open already selects frame 0, which we use."""
    # Counting frames walks the whole file, so it can hit truncated data too.
    frames = _decoding(path, lambda: getattr(image, "n_frames", 1))
    if frames > 1:
        return [f"file has {frames} frames (animated or multi-page); used the first"]
    return []


def _upright(image: Image.Image) -> tuple[Image.Image, list[str]]:
    """Apply the EXIF orientation so the pixels match what photo viewers show."""
    orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
    if orientation not in range(2, 9):
        return image, []
    return ImageOps.exif_transpose(image), [f"applied EXIF orientation {orientation}"]


def _to_rgb(path, image: Image.Image, background) -> tuple[Image.Image, list[str]]:
    """Convert any supported mode to 8-bit RGB, saying what changed."""
    mode = image.mode
    if mode in _HIGH_DEPTH_MODES:
        gray, note = _high_depth_to_8bit(path, image)
        return gray.convert("RGB"), [note]
    if image.has_transparency_data:
        return _composite(image, background), [
            f"mode {mode} with transparency composited onto background "
            f"{tuple(background)}"
        ]
    if mode not in _CONVERTIBLE_MODES:
        raise _refuse(
            path, f"pixel mode {mode} is not supported", "save it as RGB first"
        )
    notes = [] if mode == "RGB" else [f"converted from mode {mode} to RGB"]
    if mode == "CMYK":
        notes = [
            "converted from CMYK to RGB without colour management (ICC profile ignored)"
        ]
    return image.convert("RGB"), notes


def _composite(image: Image.Image, background) -> Image.Image:
    """Blend onto an opaque background colour; the models take no alpha channel."""
    rgba = image.convert("RGBA")
    base = Image.new("RGBA", rgba.size, (*background, 255))
    return Image.alpha_composite(base, rgba).convert("RGB")


def _high_depth_to_8bit(path, image: Image.Image) -> tuple[Image.Image, str]:
    """Scale 16-bit values by 255/65535 and float 0..1 by 255; refuse other ranges."""
    is_float = image.mode == "F"
    values = np.asarray(image.convert("F" if is_float else "I"), dtype=np.float64)
    low, high = float(values.min()), float(values.max())
    top = 1.0 if is_float else 65535.0
    if not (np.isfinite(low) and np.isfinite(high) and 0 <= low and high <= top):
        raise _refuse(
            path,
            f"mode {image.mode} pixel values span {low:g}..{high:g}, outside "
            f"0..{top:g}, so their brightness scale is unknown",
            "convert it to an 8- or 16-bit image first",
        )
    scaled = np.rint(values * (255.0 / top)).astype(np.uint8)
    return (
        Image.fromarray(scaled),
        f"mode {image.mode} values scaled from 0..{top:g} to 8-bit",
    )


def to_model_array(image: Image.Image) -> np.ndarray:
    """RGB image -> float32 (3, H, W) in [0, 1]; mean/std is left to the caller."""
    if image.mode != "RGB":
        raise ValueError(f"to_model_array expects an RGB image, got mode {image.mode}")
    array = np.asarray(image, dtype=np.float32) / np.float32(255)
    return np.ascontiguousarray(array.transpose(2, 0, 1))
