"""Synthetic image sets in the activations-folder contract, for the explorer's tests: layers.tsv,
one float32 C x H x W .npy per layer, input.png, and a top_images.tsv computed from the arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from filterlens.activations import LAYER_COLUMNS
from filterlens.explorer import TOP_COLUMNS
from filterlens.files import read_tsv, write_tsv

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = [ROOT / "resources/images/chelsea.png", ROOT / "resources/images/coffee.png"]

# ResNet18 at 224 x 224: its 20 Conv2d call ids in network order, (channels, height, width),
# and the receptive field (size, stride) of their units in input pixels.
RESNET18 = [("conv1", (64, 112, 112), (7, 2))]
RESNET18 += [(f"layer1.{b}.conv{c}", (64, 56, 56), (11 + 8 * (2 * b + c - 1), 4))
             for b in (0, 1) for c in (1, 2)]  # fmt: skip
for _i, (_stage, _c, _hw, _first, _step) in enumerate(
    [("layer2", 128, 28, 51, 16), ("layer3", 256, 14, 115, 32), ("layer4", 512, 7, 243, 64)]
):
    _stride = 8 << _i
    RESNET18 += [
        (f"{_stage}.0.conv1", (_c, _hw, _hw), (_first, _stride)),
        (f"{_stage}.0.conv2", (_c, _hw, _hw), (_first + _step, _stride)),
        (f"{_stage}.0.downsample.0", (_c, _hw, _hw), (_first - _step // 2, _stride)),
        (f"{_stage}.1.conv1", (_c, _hw, _hw), (_first + 2 * _step, _stride)),
        (f"{_stage}.1.conv2", (_c, _hw, _hw), (_first + 3 * _step, _stride)),
    ]


def smooth_maps(rng, shape, scale) -> np.ndarray:
    """C x H x W float32 with blobs a few units wide and some noise, `scale` per filter."""
    c, h, w = shape
    coarse = rng.standard_normal((c, h // 4 + 2, w // 4 + 2), dtype=np.float32)
    fine = coarse.repeat(4, axis=1).repeat(4, axis=2)
    for axis in (1, 2):  # a 4-wide box blur along each axis softens the blocks
        fine = sum(np.roll(fine, s, axis=axis) for s in range(4)) / 4
    maps = fine[:, 2 : 2 + h, 2 : 2 + w] + 0.3 * rng.standard_normal(shape, dtype=np.float32)
    return (maps * scale[:, None, None]).astype(np.float32)


def photo_variant(i: int, size: tuple[int, int]) -> Image.Image:
    """The i-th of many different inputs made from the bundled photos: crops, flips, tints."""
    rng = np.random.default_rng(1000 + i)
    photo = Image.open(PHOTOS[i % len(PHOTOS)]).convert("RGB")
    w, h = photo.size
    side = int(min(w, h) * rng.uniform(0.45, 1.0))
    left, top = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
    image = photo.crop((left, top, left + side, top + side)).resize(size, Image.Resampling.BILINEAR)
    if i % 3 == 1:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    tint = rng.uniform(0.8, 1.2, size=3)
    return Image.fromarray(np.clip(np.asarray(image) * tint, 0, 255).astype(np.uint8))


def make_set(root: Path, count: int, layers=RESNET18, size=(224, 224), seed=0) -> dict[str, Path]:
    """`count` activation folders under root/<image>/activations; name -> folder in set order."""
    rng = np.random.default_rng(seed)
    folders = {}
    for i in range(count):
        name = f"img{i:03d}"
        folder = root / name / "activations"
        folder.mkdir(parents=True)
        rows = []
        for layer, shape, _ in layers:
            scale = np.exp(rng.normal(0, 0.7, size=shape[0])).astype(np.float32)
            np.save(folder / f"{layer}.npy", smooth_maps(rng, shape, scale))
            rows.append((layer, layer, "Conv2d", *shape, shape[0]))
        write_tsv(folder / "layers.tsv", LAYER_COLUMNS, rows)
        photo_variant(i, size).save(folder / "input.png", compress_level=6)
        folders[name] = folder
    return folders


def write_top_images(path: Path, folders: dict[str, Path], layers=RESNET18, k=4, size=(224, 224)):
    """top_images.tsv of the set: per layer, filter and measure the k strongest images, the
    position of each one's max and the receptive field there; returns the rows as read back."""
    names = list(folders)
    rows = []
    for layer, (c, h, w), (field, stride) in layers:
        stack = np.stack([np.load(folders[n] / f"{layer}.npy") for n in names])  # N C H W
        flat = stack.reshape(len(names), c, -1)
        measures = {"max": flat.max(axis=2), "mean": flat.mean(axis=2, dtype=np.float64)}
        where = flat.argmax(axis=2)
        for f in range(c):
            for by in ("mean", "max"):
                order = np.argsort(-measures[by][:, f], kind="stable")[:k]
                for rank, n in enumerate(order, start=1):
                    y, x = divmod(int(where[n, f]), w)
                    box = receptive_field(y, x, field, stride, size)
                    rows.append(
                        (layer, f, by, rank, names[n], float(measures[by][n, f]), y, x, *box)
                    )
    write_tsv(path, TOP_COLUMNS, rows)
    return read_tsv(path)


def receptive_field(y, x, field, stride, size) -> tuple[int, int, int, int, int]:
    """(top, left, bottom, right, whole) of a unit's field, clipped to the image."""
    cy, cx = y * stride + stride // 2, x * stride + stride // 2
    top, left = max(0, cy - field // 2), max(0, cx - field // 2)
    bottom, right = min(size[1], cy + field // 2 + 1), min(size[0], cx + field // 2 + 1)
    whole = int(top == 0 and left == 0 and bottom == size[1] and right == size[0])
    return top, left, bottom, right, whole
