"""Tests for filterlens.images; every fixture is generated in tmp_path with Pillow."""

import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile, TiffImagePlugin

from filterlens import preprocess
from filterlens.config import IMAGE_SUFFIXES
from filterlens.images import (
    DEFAULT_MAX_PIXELS,
    FORMATS,
    TIFF_COMPRESSIONS,
    ImageInputError,
    identify_format,
    load_image,
    to_model_array,
)

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def near(actual, expected, tol=8):
    """Lossy formats (JPEG) shift colours slightly."""
    return all(abs(a - e) <= tol for a, e in zip(actual, expected))


def save(tmp_path, image, name, **params):
    path = tmp_path / name
    image.save(path, **params)
    return path


def png_bytes(width, height, idat=b"", bit_depth=8, colour_type=0):
    """A PNG built by hand, so the header can claim any size regardless of the data."""

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", idat)
        + chunk(b"IEND", b"")
    )


def refused(path, *words, **kwargs):
    """Expect ImageInputError naming the file and every word; return its message."""
    with pytest.raises(ImageInputError) as info:
        load_image(path, **kwargs)
    message = str(info.value)
    assert path.name in message
    for word in words:
        assert word in message, message
    return message


# --- files that are not images --------------------------------------------------------


def test_missing_file_is_refused(tmp_path):
    refused(tmp_path / "nope.png", "does not exist")


def test_directory_is_refused(tmp_path):
    folder = tmp_path / "photos.jpg"
    folder.mkdir()
    refused(folder, "is a directory")


def test_empty_file_is_refused(tmp_path):
    path = tmp_path / "empty.png"
    path.touch()
    refused(path, "empty (0 bytes)")


def test_text_named_jpg_is_refused_with_a_hint(tmp_path):
    path = tmp_path / "cat.jpg"
    path.write_text("<html><body>404 Not Found</body></html>\n")
    refused(path, "not an image format filterlens reads", "plain text", "extension")


def test_unknown_bytes_are_refused_naming_the_allowed_formats(tmp_path):
    path = tmp_path / "cat.png"
    path.write_bytes(bytes(range(256)) * 4)
    message = refused(path, "not an image format filterlens reads")
    assert "plain text" not in message
    assert "a PNG, JPEG, BMP, GIF, TIFF or WebP image" in message


def test_corrupt_header_of_an_allowed_format_is_not_called_another_format(tmp_path):
    path = tmp_path / "cat.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\xff" * 40)
    refused(path, "starts like a PNG file", "cannot read its header", "re-export")


def test_suffixes_the_config_picks_are_exactly_the_allowed_formats():
    """A folder of images yields the files config.IMAGE_SUFFIXES names: each must be
    decodable, and each allowed format reachable by one of them."""
    by_suffix = Image.registered_extensions()
    assert {by_suffix[suffix] for suffix in IMAGE_SUFFIXES} == set(FORMATS)


def test_a_plain_targa_is_not_called_a_cursor():
    # Uncompressed Targa starts with 00 00 02 00, as Windows cursors do; a cursor then
    # counts its pictures (at least one).
    assert (
        identify_format(bytes([0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 8, 0])) is None
    )
    assert identify_format(b"\0\0\2\0\1\0" + bytes(10)) == "a CUR (Windows cursor)"


def test_multi_picture_jpeg_uses_the_first_picture(tmp_path):
    path = tmp_path / "stereo.jpg"
    left, right = Image.new("RGB", (16, 16), RED), Image.new("RGB", (16, 16), BLUE)
    left.save(path, format="MPO", save_all=True, append_images=[right], quality=95)
    image, notes = load_image(path)
    assert near(image.getpixel((8, 8)), RED)
    assert "2 frames" in notes[0]


def test_error_is_a_value_error(tmp_path):
    with pytest.raises(ValueError):
        load_image(tmp_path / "nope.png")


# --- truncated and corrupt data -------------------------------------------------------


def noise(size=(64, 48)):
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


@pytest.mark.parametrize("cut", [2, 100, "half"])
def test_truncated_jpeg_is_refused(tmp_path, cut):
    path = save(tmp_path, noise(), "cut.jpg", quality=90)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if cut == "half" else data[:-cut])
    refused(path, "truncated or corrupt", "re-export")


@pytest.mark.parametrize("cut", [12, 20, 100, "half"])
def test_truncated_png_is_refused(tmp_path, cut):
    # 12 drops IEND and 20 only the last IDAT checksum: a plain decode accepts both.
    path = save(tmp_path, noise(), "cut.png")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if cut == "half" else data[:-cut])
    refused(path, "truncated or corrupt")


def test_truncated_gif_is_refused(tmp_path):
    path = save_animation(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    refused(path, "truncated or corrupt")


def test_refuses_to_run_with_load_truncated_images(tmp_path, monkeypatch):
    path = save(tmp_path, Image.new("RGB", (2, 2)), "ok.png")
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(RuntimeError, match="LOAD_TRUNCATED_IMAGES"):
        load_image(path)


def test_does_not_touch_load_truncated_images(tmp_path):
    load_image(save(tmp_path, Image.new("RGB", (2, 2)), "ok.png"))
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


# --- pixel modes ----------------------------------------------------------------------


def test_rgb_passes_through_without_notes(tmp_path):
    image, notes = load_image(
        save(tmp_path, Image.new("RGB", (3, 2), (10, 20, 30)), "rgb.png")
    )
    assert (image.mode, image.size, image.getpixel((2, 1)), notes) == (
        "RGB",
        (3, 2),
        (10, 20, 30),
        [],
    )


def test_grayscale_becomes_gray_rgb(tmp_path):
    image, notes = load_image(save(tmp_path, Image.new("L", (2, 2), 77), "gray.png"))
    assert image.mode == "RGB" and image.getpixel((0, 0)) == (77, 77, 77)
    assert notes == ["converted from mode L to RGB"]


def test_one_bit_maps_to_black_and_white(tmp_path):
    bits = Image.new("1", (2, 1), 0)
    bits.putpixel((1, 0), 1)
    image, notes = load_image(save(tmp_path, bits, "bits.png"))
    assert [image.getpixel((x, 0)) for x in range(2)] == [(0, 0, 0), WHITE]
    assert "mode 1" in notes[0]


def palette_image():
    image = Image.new("P", (2, 1), 0)
    image.putpalette([*RED, *GREEN])
    image.putpixel((1, 0), 1)
    return image


def test_palette_uses_palette_colours(tmp_path):
    image, notes = load_image(save(tmp_path, palette_image(), "pal.png"))
    assert [image.getpixel((x, 0)) for x in range(2)] == [RED, GREEN]
    assert notes == ["converted from mode P to RGB"]


def test_palette_transparency_is_composited_on_background(tmp_path):
    path = save(tmp_path, palette_image(), "paltrans.png", transparency=1)
    image, notes = load_image(path)
    assert [image.getpixel((x, 0)) for x in range(2)] == [RED, WHITE]
    assert "transparency composited" in notes[0]
    image, _ = load_image(path, background=(0, 0, 0))
    assert image.getpixel((1, 0)) == (0, 0, 0)


def test_rgba_is_composited_on_background(tmp_path):
    rgba = Image.new("RGBA", (3, 1))
    for x, pixel in enumerate([(255, 0, 0, 0), (0, 0, 255, 255), (0, 0, 0, 128)]):
        rgba.putpixel((x, 0), pixel)
    image, notes = load_image(save(tmp_path, rgba, "rgba.png"))
    assert image.getpixel((0, 0)) == WHITE  # fully transparent: background only
    assert image.getpixel((1, 0)) == BLUE  # opaque: unchanged
    assert near(image.getpixel((2, 0)), (127, 127, 127), tol=1)  # half black on white
    assert (
        "mode RGBA with transparency composited onto background (255, 255, 255)"
        in notes
    )


def test_la_is_composited_on_custom_background(tmp_path):
    path = save(tmp_path, Image.new("LA", (1, 1), (200, 0)), "la.png")
    image, notes = load_image(path, background=(0, 50, 100))
    assert image.getpixel((0, 0)) == (0, 50, 100)
    assert "mode LA" in notes[0]


def test_cmyk_jpeg_is_converted(tmp_path):
    path = save(
        tmp_path, Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "cmyk.jpg", quality=95
    )
    with Image.open(path) as stored:
        assert stored.mode == "CMYK"
    image, notes = load_image(path)
    assert image.mode == "RGB" and near(image.getpixel((8, 8)), RED)
    assert "CMYK" in notes[0]


def test_16_bit_grayscale_png_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257, 32768, 65535]], dtype=np.uint16)
    path = save(tmp_path, Image.fromarray(values), "g16.png")
    with Image.open(path) as stored:
        assert stored.mode.startswith("I;16")
    image, notes = load_image(path)
    assert [image.getpixel((x, 0))[0] for x in range(4)] == [0, 1, 128, 255]
    assert "scaled from 0..65535 to 8-bit" in notes[0]


def test_16_bit_rgb_png_keeps_full_range(tmp_path):
    raw = b"\0" + struct.pack(">3H", 65535, 32768, 0)
    path = tmp_path / "rgb16.png"
    path.write_bytes(png_bytes(1, 1, zlib.compress(raw), bit_depth=16, colour_type=2))
    image, _ = load_image(path)
    assert image.getpixel((0, 0)) == (255, 128, 0)


def int32_tiff(tmp_path, values):
    image = Image.new("I", (len(values), 1))
    for x, value in enumerate(values):
        image.putpixel((x, 0), value)
    return save(tmp_path, image, "int32.tif")


def test_32_bit_int_with_16_bit_values_is_scaled(tmp_path):
    image, notes = load_image(int32_tiff(tmp_path, [0, 32768, 65535]))
    assert [image.getpixel((x, 0))[0] for x in range(3)] == [0, 128, 255]
    assert "mode I" in notes[0]


@pytest.mark.parametrize("values", [[0, 70000], [-5, 10]])
def test_32_bit_int_outside_16_bit_range_is_refused(tmp_path, values):
    refused(int32_tiff(tmp_path, values), "mode I", "outside 0..65535", "8- or 16-bit")


def float_tiff(tmp_path, values):
    return save(
        tmp_path, Image.fromarray(np.array([values], dtype=np.float32)), "float.tif"
    )


def test_float_in_unit_range_is_scaled(tmp_path):
    image, notes = load_image(float_tiff(tmp_path, [0.0, 0.5, 1.0]))
    assert [image.getpixel((x, 0))[0] for x in range(3)] == [0, 128, 255]
    assert "mode F" in notes[0]


@pytest.mark.parametrize("values", [[0.0, 2.0], [np.nan, 0.5]])
def test_float_outside_unit_range_is_refused(tmp_path, values):
    refused(float_tiff(tmp_path, values), "mode F", "outside 0..1")


def tiff_with_compression(tmp_path, code):
    """An uncompressed RGB TIFF whose compression tag claims `code`."""
    path = save(tmp_path, Image.new("RGB", (4, 4), RED), f"c{code}.tif")
    data = bytearray(path.read_bytes())
    (ifd,) = struct.unpack("<I", data[4:8])
    (count,) = struct.unpack("<H", data[ifd : ifd + 2])
    for entry in range(ifd + 2, ifd + 2 + 12 * count, 12):
        if struct.unpack("<H", data[entry : entry + 2])[0] == 259:
            data[entry + 8 : entry + 10] = struct.pack("<H", code)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "compression", ["tiff_lzw", "tiff_adobe_deflate", "packbits", "jpeg"]
)
def test_tiff_with_a_common_compression_is_read(tmp_path, compression):
    path = save(
        tmp_path, Image.new("RGB", (16, 16), RED), "c.tif", compression=compression
    )
    image, _ = load_image(path)
    assert near(image.getpixel((8, 8)), RED)


@pytest.mark.parametrize("code", [6, 32809, 34676])
def test_tiff_with_a_rare_compression_is_refused_before_decoding(
    tmp_path, monkeypatch, code
):
    """Old-style JPEG, ThunderScan, SGILog: libtiff's decoder for them never runs."""
    assert code not in TIFF_COMPRESSIONS
    path = tiff_with_compression(tmp_path, code)

    def no_decode(self):
        raise AssertionError("pixel data was decoded")

    monkeypatch.setattr(TiffImagePlugin.TiffImageFile, "load", no_decode)
    monkeypatch.setattr(TiffImagePlugin.TiffImageFile, "_load_libtiff", no_decode)
    refused(path, f"TIFF with compression {code}", "does not decode", "LZW or Deflate")


def test_tiff_compression_pillow_does_not_know_is_refused(tmp_path):
    refused(tiff_with_compression(tmp_path, 32909), "starts like a TIFF file")


def test_unsupported_mode_is_refused(tmp_path):
    refused(
        save(tmp_path, Image.new("LAB", (2, 2)), "lab.tif"), "mode LAB is not supported"
    )


# --- geometry, frames, size -----------------------------------------------------------


def test_exif_rotation_is_applied(tmp_path):
    # Stored landscape: left half red, right half blue. Orientation 6 means "rotate 90
    # degrees clockwise to display", which puts the left half on top.
    stored = Image.new("RGB", (32, 16), BLUE)
    stored.paste(RED, (0, 0, 16, 16))
    exif = Image.Exif()
    exif[0x0112] = 6
    image, notes = load_image(
        save(tmp_path, stored, "rotated.jpg", exif=exif, quality=95)
    )
    assert image.size == (16, 32)
    assert near(image.getpixel((0, 0)), RED) and near(image.getpixel((15, 0)), RED)
    assert near(image.getpixel((0, 31)), BLUE) and near(image.getpixel((15, 31)), BLUE)
    assert notes == ["applied EXIF orientation 6"]


def save_animation(tmp_path):
    frames = [Image.new("RGB", (8, 8), colour) for colour in (RED, GREEN, BLUE)]
    return save(
        tmp_path, frames[0], "anim.gif", save_all=True, append_images=frames[1:]
    )


def test_animated_gif_uses_first_frame(tmp_path):
    image, notes = load_image(save_animation(tmp_path))
    assert image.mode == "RGB" and image.getpixel((4, 4)) == RED
    assert "3 frames" in notes[0] and "used the first" in notes[0]


def test_one_pixel_image_is_processed(tmp_path):
    image, notes = load_image(
        save(tmp_path, Image.new("RGB", (1, 1), GREEN), "dot.png")
    )
    assert (image.size, image.getpixel((0, 0)), notes) == ((1, 1), GREEN, [])
    assert to_model_array(preprocess.stretch(image, (224, 224))).shape == (3, 224, 224)


def test_large_image_is_processed(tmp_path):
    big = Image.new("L", (4000, 3000), 90)
    big.paste(255, (0, 0, 10, 10))
    image, _ = load_image(save(tmp_path, big, "big.png", compress_level=1))
    assert image.size == (4000, 3000) and image.getpixel((0, 0)) == WHITE
    assert image.getpixel((3999, 2999)) == (90, 90, 90)


def test_header_claiming_too_many_pixels_is_refused_before_decoding(tmp_path):
    # The IDAT holds no pixel data, so any decode attempt would fail as "truncated".
    path = tmp_path / "bomb.png"
    path.write_bytes(png_bytes(8000, 8000))
    message = refused(path, "8000x8000 = 64,000,000 pixels", f"{DEFAULT_MAX_PIXELS:,}")
    assert "before decoding" in message and "max_image_pixels" in message
    assert "truncated" not in message


def test_pixel_limit_is_checked_before_any_decode(tmp_path, monkeypatch):
    path = save(tmp_path, Image.new("L", (2000, 1000)), "cheap.png")

    def no_decode(self):
        raise AssertionError("pixel data was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decode)
    message = refused(
        path, "2,000,000 pixels", "limit of 1,999,999", max_pixels=1_999_999
    )
    assert "raise `max_image_pixels`" in message


def test_raising_the_pixel_limit_admits_the_image(tmp_path):
    path = save(tmp_path, Image.new("L", (20, 10)), "small.png")
    refused(path, "200 pixels", max_pixels=199)
    image, _ = load_image(path, max_pixels=200)
    assert image.size == (20, 10)


def test_pillow_hard_limit_is_reported_with_both_limits(tmp_path):
    # Above 2 x PIL.Image.MAX_IMAGE_PIXELS Pillow itself refuses inside Image.open.
    path = tmp_path / "huge.png"
    path.write_bytes(png_bytes(100_000, 100_000))
    max_before = Image.MAX_IMAGE_PIXELS
    refused(
        path,
        "10000000000 pixels",
        "before decoding",
        "10,000,000,000,000",
        max_pixels=10**13,
    )
    assert Image.MAX_IMAGE_PIXELS == max_before


# --- resize and array -----------------------------------------------------------------


def test_model_array_is_float_chw_in_unit_range():
    image = Image.new("RGB", (3, 2), (255, 0, 51))
    array = to_model_array(image)
    assert array.shape == (3, 2, 3) and array.dtype == np.float32
    assert array.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(array[:, 1, 2], [1.0, 0.0, 0.2], atol=1e-7)
