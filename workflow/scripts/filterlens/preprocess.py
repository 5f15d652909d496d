"""What the model sees: the RGB image at img_size that config key `preprocess` makes of the input.

  stretch    (default) resized to img_size exactly, the aspect ratio not kept: what filterlens
             always did.
  weights    torchvision's evaluation transform of the model's DEFAULT weights: the shorter side
             resized to the weights' resize size scaled by img_size / crop size (with the weights'
             interpolation), then center-cropped to img_size. At img_size = the crop size it is the
             weights' own `transforms()`, bit for bit.
  letterbox  scaled to fit inside img_size with its aspect ratio kept, centered and padded with
             the weights' mean color (the ImageNet mean).

Pure Pillow: the weights' numbers come in as an `EvalTransform`, which `weights_transform` reads
from torchvision (the one function here that imports it), so a batch job reads them once per model.
The image returned is what input.png holds; normalization (mean and std) is `models.to_input`'s.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from PIL import Image

MODES = ("stretch", "weights", "letterbox")
CONFIG_KEY = "preprocess"

# torchvision's InterpolationMode values -> Pillow filters (as torchvision maps them).
_FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "nearest-exact": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
    "lanczos": Image.Resampling.LANCZOS,
}


class PreprocessError(ValueError):
    """A preprocessing setting that cannot be applied; the message names the key and the fix."""


@dataclass(frozen=True)
class EvalTransform:
    """The numbers of a weights' evaluation transform (torchvision's `ImageClassification`)."""

    weights: str  # e.g. ResNet18_Weights.IMAGENET1K_V1
    resize_size: int  # the shorter side, before the crop
    crop_size: int  # square
    interpolation: str  # torchvision's InterpolationMode value: bilinear, bicubic, ...
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


@dataclass(frozen=True)
class ModelInput:
    image: Image.Image  # RGB at img_size: what the model sees and input.png holds
    mode: str
    description: str  # one line for the log, extraction.json and the page
    transform: EvalTransform  # its mean and std normalize every mode; resize and crop: weights

    def record(self) -> dict:
        """What extraction.json records under `preprocess`."""
        return {
            "mode": self.mode, "description": self.description,
            "transform": asdict(self.transform),
        }  # fmt: skip


def weights_transform(model: str) -> EvalTransform:
    """The evaluation transform of torchvision's DEFAULT weights for `model` (no download)."""
    import torchvision  # noqa: PLC0415 - only the extraction job pays for torchvision

    weights = torchvision.models.get_model_weights(model).DEFAULT
    transform = weights.transforms()
    (resize_size,), (crop_size,) = transform.resize_size, transform.crop_size
    return EvalTransform(
        weights=str(weights), resize_size=int(resize_size), crop_size=int(crop_size),
        interpolation=transform.interpolation.value,
        mean=tuple(float(v) for v in transform.mean), std=tuple(float(v) for v in transform.std),
    )  # fmt: skip


def prepare(
    image: Image.Image, size: tuple[int, int], mode: str, transform: EvalTransform
) -> ModelInput:
    """`image` (RGB) as the model sees it at `size` = (width, height), by `mode` (see MODES)."""
    if image.mode != "RGB":
        raise ValueError(f"prepare expects an RGB image, got mode {image.mode}")
    width, height = size
    if width < 1 or height < 1:
        raise ValueError(f"prepare needs a positive size, got {size}")
    if mode not in MODES:
        raise PreprocessError(f"config key {CONFIG_KEY!r} is {mode!r}; allowed: {', '.join(MODES)}")
    source = f"{image.width}x{image.height}"
    if mode == "stretch":
        return ModelInput(
            stretch(image, size), mode,
            f"stretched from {source} to {width}x{height} (bilinear; aspect ratio not kept)",
            transform,
        )  # fmt: skip
    if mode == "weights":
        resized = resize_shorter_side(image, _short_side(transform, size), transform.interpolation)
        scaled = ""
        if max(size) != transform.crop_size:
            scaled = f", scaled from its {transform.resize_size}/{transform.crop_size} to img_size"
        return ModelInput(
            center_crop(resized, size), mode,
            f"the evaluation transform of {transform.weights}: {source} resized to "
            f"{resized.width}x{resized.height} ({transform.interpolation}{scaled}), "
            f"center-cropped to {width}x{height}",
            transform,
        )  # fmt: skip
    fill = mean_color(transform)
    boxed, inner = letterbox(image, size, fill)
    return ModelInput(
        boxed, mode,
        f"letterboxed: {source} scaled to {inner[0]}x{inner[1]} (bilinear; aspect ratio kept), "
        f"centered in {width}x{height} padded with the mean color {fill}",
        transform,
    )  # fmt: skip


def stretch(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Resize to exactly `size` = (width, height), antialiased bilinear.

    Bilinear matches torchvision's reference ImageNet preprocessing for PIL images;
    reducing_gap=None keeps Pillow from taking its faster, approximate reduce() path.
    """
    return image.resize(tuple(size), Image.Resampling.BILINEAR, reducing_gap=None)


def _short_side(transform: EvalTransform, size: tuple[int, int]) -> int:
    """The weights' resize size scaled by img_size / crop size, rounded; the larger side of
    img_size sets the scale, so the crop always lies inside the resized image."""
    numerator = transform.resize_size * max(size)
    return (2 * numerator + transform.crop_size) // (2 * transform.crop_size)


def resize_shorter_side(image: Image.Image, short: int, interpolation: str) -> Image.Image:
    """Resize so the shorter side is `short`, the longer in proportion (truncated), as
    torchvision's `resize(img, [short])` does for a PIL image."""
    width, height = image.size
    if width <= height:
        new = (short, int(short * height / width))
    else:
        new = (int(short * width / height), short)
    if new == image.size:
        return image
    return image.resize(new, _FILTERS[interpolation])


def center_crop(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The centered `size` = (width, height) window, offsets rounded as torchvision rounds them."""
    width, height = size
    top = int(round((image.height - height) / 2.0))
    left = int(round((image.width - width) / 2.0))
    return image.crop((left, top, left + width, top + height))


def mean_color(transform: EvalTransform) -> tuple[int, int, int]:
    """The weights' mean as an 8-bit color: (124, 116, 104) for the ImageNet mean."""
    return tuple(int(round(255 * value)) for value in transform.mean)


def letterbox(
    image: Image.Image, size: tuple[int, int], fill: tuple[int, int, int]
) -> tuple[Image.Image, tuple[int, int]]:
    """`image` scaled to fit `size` with its aspect ratio kept, centered on a `fill` canvas;
    returns the canvas and the size the image has on it."""
    width, height = size
    scale = min(width / image.width, height / image.height)
    inner = (
        min(width, max(1, round(image.width * scale))),
        min(height, max(1, round(image.height * scale))),
    )
    canvas = Image.new("RGB", (width, height), fill)
    canvas.paste(stretch(image, inner), ((width - inner[0]) // 2, (height - inner[1]) // 2))
    return canvas, inner
