"""Trust: bad input images are refused early and clearly, and leave no output behind.

A path that is missing, or a folder without images, is refused at start-up by the config check.
Only the raster formats on the allow list (images.FORMATS) are ever decoded: a file in another
format (EPS, PDF, SVG, ...) is refused naming its real format, and no other Pillow plugin (the EPS
one would run Ghostscript) ever sees it.
A file that exists but is no usable image is refused before any model work, naming the file and
the reason: what its header shows (empty, text, a decompression bomb) at start-up, for every image
to extract at once; what only decoding shows (truncated data) by its extraction batch, which
decodes all its images before it loads the model, on Snakemake's stderr and in the batch's log.
Nothing is left behind. Each kind of bad file is
unit-tested in test_images.py; here a representative set goes through the real workflow.
"""

from __future__ import annotations

import functools
import io
import os
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from conftest import REPO, Workflow, copy_workflow
from filterlens import batches, images
from filterlens import config as cfg

# --- start-up: what an `images` entry may name ------------------------------------------------


def test_folder_with_images_is_an_image_set(tmp_path):
    folder = tmp_path / "shots"
    folder.mkdir()
    for name in ("b cat.png", "a.JPG", "notes.txt"):
        (folder / name).write_bytes(b"x")
    (folder / "nested").mkdir()
    (folder / "nested" / "c.png").write_bytes(b"x")
    assert cfg.expand_images({"shot": "shots"}, tmp_path) == {
        "shot_a": "shots/a.JPG",
        "shot_b-cat": "shots/b cat.png",
    }


def test_empty_folder_is_refused(tmp_path):
    (tmp_path / "shots").mkdir()
    with pytest.raises(cfg.ConfigError, match=r"'images.shot': 'shots' is a folder with no image"):
        cfg.expand_images({"shot": "shots"}, tmp_path)


def test_folder_without_image_files_is_refused(tmp_path):
    (tmp_path / "shots").mkdir()
    (tmp_path / "shots" / "readme.txt").write_text("no images here")
    (tmp_path / "shots" / "sub").mkdir()
    (tmp_path / "shots" / "sub" / "a.png").write_bytes(b"x")
    with pytest.raises(cfg.ConfigError, match="sub-folders are not searched"):
        cfg.expand_images({"shot": "shots"}, tmp_path)


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(cfg.ConfigError, match=r"'images.cat': file 'cat.png' does not exist"):
        cfg.expand_images({"cat": "cat.png"}, tmp_path)


@pytest.mark.workflow
@pytest.mark.parametrize(
    "spec, message",
    [
        (
            "resources/images/dog.png",
            "config key 'images.pet': file 'resources/images/dog.png' does not exist",
        ),
        (
            "resources/empty",
            "config key 'images.pet': 'resources/empty' is a folder with no image file",
        ),
    ],
    ids=["missing-file", "empty-folder"],
)
def test_snakemake_refuses_the_image_at_start_up(workflow_copy, spec, message):
    (workflow_copy.root / "resources/empty").mkdir()
    config = workflow_copy.write_config(images={"pet": spec})
    result = workflow_copy.snakemake("-n", "--configfile", str(config), check=False)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert "Building DAG of jobs" not in result.stdout + result.stderr
    assert not (workflow_copy.root / "results").exists()


# --- decoding: only the raster formats on the allow list -------------------------------------

SQUARE = Image.new("RGB", (8, 8), (200, 30, 30))
POSTSCRIPT = "%!PS-Adobe-3.0\n/Times-Roman findfont 12 scalefont setfont\n72 72 moveto (cat) show\nshowpage\n"
SVG = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8" height="8"/></svg>\n'
)


def write_other_format(path: Path, kind: str) -> Path:
    """A real file of `kind` (Pillow writes the raster and EPS/PDF ones), under `path`'s name."""
    if kind == "PostScript":
        path.write_text(POSTSCRIPT)
    elif kind == "SVG":
        path.write_text(SVG)
    elif kind == "HEIC":  # an ISO media header with the HEIC brand: what iPhones save
        path.write_bytes(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + bytes(64))
    else:
        SQUARE.save(path, format=kind)
    return path


# kind -> how the refusal names it
OTHER_FORMATS = {
    "EPS": "is an EPS (Encapsulated PostScript) file",
    "PostScript": "is a PostScript file",
    "PDF": "is a PDF file",
    "SVG": "is an SVG (Scalable Vector Graphics) file",
    "HEIC": "is a HEIC/HEIF file",
    "ICO": "is an ICO (Windows icon) file",
    "JPEG2000": "is a JPEG 2000 file",
    "PPM": "is a Netpbm (PBM/PGM/PPM) file",
    "DDS": "is a DDS (DirectDraw Surface) file",
}


@pytest.fixture
def foreign_plugins(monkeypatch):
    """Replace the opener of every Pillow plugin outside the allow list by a spy that records
    the call and refuses, so that a test sees any file that reached one."""
    Image.init()
    calls = []
    for name, (factory, accept) in list(Image.OPEN.items()):
        if name not in images.FORMATS:

            @functools.wraps(factory)  # keeps the plugin's attributes, e.g. its description
            def spy(fp, filename=None, name=name):
                calls.append(name)
                raise AssertionError(f"the {name} plugin was asked to open {filename}")

            monkeypatch.setitem(Image.OPEN, name, (spy, accept))
    return calls


@pytest.mark.parametrize("kind", OTHER_FORMATS)
def test_other_format_is_refused_naming_it_without_any_other_plugin(
    tmp_path, kind, foreign_plugins
):
    path = write_other_format(tmp_path / "photo.jpg", kind)
    with pytest.raises(images.ImageInputError) as info:
        images.load_image(path)
    assert str(info.value) == (
        f"{path}: {OTHER_FORMATS[kind]}, not a raster image format filterlens reads "
        "(allowed: PNG, JPEG, BMP, GIF, TIFF, WebP); convert it to PNG"
    )
    assert foreign_plugins == []


def test_the_spy_sees_what_an_unrestricted_open_would_do(tmp_path, foreign_plugins):
    """The check above can fail: Pillow left to itself hands an EPS file to the EPS plugin,
    whose load() runs Ghostscript."""
    path = write_other_format(tmp_path / "photo.jpg", "EPS")
    with pytest.raises(AssertionError, match="EPS plugin"):
        Image.open(path)
    assert foreign_plugins == ["EPS"]


def test_eps_never_reaches_ghostscript(tmp_path, monkeypatch):
    """With the real plugins in place: the EPS plugin's reader and Ghostscript stay unused."""
    from PIL import EpsImagePlugin  # noqa: PLC0415

    def forbidden(*args, **kwargs):
        raise AssertionError("EPS data was handed to the EPS plugin or Ghostscript")

    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", forbidden)
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", forbidden)
    path = write_other_format(tmp_path / "figure.png", "EPS")
    with pytest.raises(images.ImageInputError, match="is an EPS"):
        images.load_image(path)


@pytest.mark.parametrize("kind", ["PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP"])
def test_allowed_formats_load_without_any_other_plugin(tmp_path, kind, foreign_plugins):
    path = tmp_path / f"square.{kind.lower()}"
    SQUARE.save(path, format=kind, **({"lossless": True} if kind == "WEBP" else {}))
    image, _ = images.load_image(path)
    assert image.size == (8, 8)
    assert foreign_plugins == []


# --- extraction: files that exist but are no usable image -------------------------------------

# A stand-in for torch: a job that imports it leaves a marker named after its image, then fails.
# So the test sees which extraction jobs got as far as model work.
FAKE_TORCH = """
import __main__
from pathlib import Path
marks = Path(__file__).resolve().parents[1] / "imported"
marks.mkdir(exist_ok=True)
for image in __main__.snakemake.params.images:
    (marks / image).touch()
raise ImportError("torch is replaced by a stand-in in this test")
"""


def bomb_png(width: int, height: int) -> bytes:
    """A real decompression bomb: a valid grayscale PNG of zeros, tiny on disk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    packer = zlib.compressobj(9)
    row = b"\0" * (width + 1)  # filter byte + pixels
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def bad_images(folder: Path) -> dict[str, str]:
    """Write one file per kind of bad input; return image name -> the reason its refusal gives."""
    folder.mkdir(parents=True)
    cat = Image.open(REPO / "resources/images/chelsea.png").convert("RGB")
    jpeg, png = io.BytesIO(), io.BytesIO()
    cat.save(jpeg, format="JPEG", quality=90)
    cat.save(png, format="PNG")
    (folder / "empty.png").write_bytes(b"")
    (folder / "page.jpg").write_text("<html><body>404 Not Found</body></html>\n")
    (folder / "half.jpg").write_bytes(jpeg.getvalue()[: len(jpeg.getvalue()) // 2])
    (folder / "twothirds.png").write_bytes(png.getvalue()[: len(png.getvalue()) * 2 // 3])
    (folder / "bomb.png").write_bytes(bomb_png(8000, 8000))  # 64 MP, 60 kB on disk
    write_other_format(folder / "vector.jpg", "EPS")
    return {
        "bad_empty": "file is empty (0 bytes)",
        "bad_page": "content is not an image format filterlens reads (it starts with plain text",
        "bad_vector": "is an EPS (Encapsulated PostScript) file, not a raster image format",
        "bad_half": "image data is truncated or corrupt",
        "bad_twothirds": "image data is truncated or corrupt",
        "bad_bomb": "image is 8000x8000 = 64,000,000 pixels, over the limit of 50,000,000 pixels",
    }


DECODE_FAULTS = ("bad_half", "bad_twothirds")  # found when decoded, before any model work; the
# others (empty, text, another format, a bomb) are found at start-up, from their headers


@pytest.fixture(scope="module")
def bad_folder(tmp_path_factory):
    wf = Workflow(copy_workflow(tmp_path_factory.mktemp("bad-images") / "wf"))
    reasons = bad_images(wf.root / "resources/bad")
    return wf, reasons


@pytest.mark.workflow
def test_bad_headers_are_refused_at_start_up_all_at_once(bad_folder):
    wf, reasons = bad_folder
    config = wf.write_config(
        "headers.yaml", images={"bad": "resources/bad", "chelsea": "resources/images/chelsea.png"}
    )
    result = wf.snakemake("-n", "--configfile", str(config), check=False)
    out = result.stdout + result.stderr
    assert result.returncode != 0
    header_faults = [image for image in reasons if image not in DECODE_FAULTS]
    assert f"{len(header_faults)} of the images to extract cannot be used; nothing was run" in out
    files = cfg.expand_images({"bad": "resources/bad"}, wf.root)
    for image in header_faults:
        assert f"image {image}: {files[image]}: {reasons[image]}" in out
    assert "Building DAG of jobs" not in out
    assert not (wf.root / "results").exists()


@pytest.fixture(scope="module")
def decode_run(bad_folder):
    """The images only decoding finds bad, with chelsea as a control under a name the hash puts
    in a batch of its own (batch_size 1: four buckets), through a stand-in torch that records
    which images reached it."""
    wf, reasons = bad_folder
    for image in set(reasons) - set(DECODE_FAULTS):
        (wf.root / cfg.expand_images({"bad": "resources/bad"}, wf.root)[image]).unlink()
    fake = wf.root.parent / "fake" / "torch"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(FAKE_TORCH)
    config = wf.write_config(
        "decode.yaml", batch_size=1,
        images={"bad": "resources/bad", "tabby": "resources/images/chelsea.png"},
    )  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(fake.parent)}
    result = wf.snakemake("--keep-going", "--configfile", str(config), check=False, env=env)
    names = ["tabby", *DECODE_FAULTS]
    count = batches.bucket_count(len(names), 1)
    buckets = {name: batches.bucket_of(name, count) for name in names}
    return wf, reasons, result, buckets, count


@pytest.mark.workflow
@pytest.mark.parametrize("image", DECODE_FAULTS)
def test_a_bad_image_stops_its_batch_naming_file_and_reason(decode_run, image):
    wf, reasons, result, buckets, count = decode_run
    assert result.returncode != 0
    files = cfg.expand_images({"bad": "resources/bad"}, wf.root)
    expected = f"image {image}: {files[image]}: {reasons[image]}"
    assert expected in result.stderr  # what the user sees
    batch = batches.Batch("resnet18", buckets[image], count, ())
    log = (wf.root / f"logs/extract_activations/resnet18/batch-{batch.name}.log").read_text()
    assert expected in log and f"Error in rule {batch.rule}" in result.stderr
    assert "Traceback" not in log  # a refusal, not a crash


@pytest.mark.workflow
def test_bad_images_are_refused_before_any_model_work(decode_run):
    """Only the control's batch, which holds no bad image, got as far as importing torch."""
    wf, reasons, result, buckets, count = decode_run
    assert buckets["tabby"] not in {buckets[image] for image in DECODE_FAULTS}
    reached = sorted(p.name for p in (wf.root.parent / "fake" / "imported").iterdir())
    assert reached == ["tabby"]


@pytest.mark.workflow
def test_bad_images_leave_no_output(decode_run):
    wf, reasons, result, buckets, count = decode_run
    for image in DECODE_FAULTS:
        folder = wf.root / "results/resnet18" / image
        leftovers = [p for p in folder.rglob("*")] if folder.exists() else []
        assert leftovers == [], f"{image} left {leftovers}"
