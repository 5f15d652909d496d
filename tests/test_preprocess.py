"""Preprocessing: stretch (the default), the weights' own evaluation transform (bit for bit
torchvision's at its crop size) and letterboxing (aspect ratio kept, padded with the mean)."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms._presets import ImageClassification

from filterlens import images, models, preprocess
from filterlens.checkout import REPO

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def chelsea():
    return images.load_image(REPO / "resources/images/chelsea.png")[0]


def shapes(image):
    """The sample as it is (landscape 451x300), turned portrait, and nearly square."""
    return [image, image.transpose(Image.Transpose.TRANSPOSE), image.resize((333, 331))]


def tensor(model_input: preprocess.ModelInput) -> torch.Tensor:
    transform = model_input.transform
    rgb = images.to_model_array(model_input.image)
    return models.to_input(rgb, CPU, transform.mean, transform.std)[0]


def test_the_weights_transforms_are_read_from_torchvision():
    resnet = preprocess.weights_transform("resnet18")
    assert (resnet.resize_size, resnet.crop_size, resnet.interpolation) == (256, 224, "bilinear")
    assert resnet.weights == "ResNet18_Weights.IMAGENET1K_V1"
    assert resnet.mean == models.IMAGENET_MEAN and resnet.std == models.IMAGENET_STD
    inception = preprocess.weights_transform("inception_v3")
    assert (inception.resize_size, inception.crop_size) == (342, 299)
    assert preprocess.weights_transform("efficientnet_b0").interpolation == "bicubic"
    assert preprocess.weights_transform("efficientnet_v2_l").mean == (0.5, 0.5, 0.5)


@pytest.mark.parametrize(
    "name", ["resnet18", "resnet50", "inception_v3", "efficientnet_b0", "efficientnet_v2_l"]
)
def test_weights_mode_at_the_crop_size_is_torchvisions_transform_bit_for_bit(chelsea, name):
    """resnet18 256/224, resnet50 232/224, inception_v3 342/299, efficientnet_b0 bicubic,
    efficientnet_v2_l with its own mean and std."""
    transform = preprocess.weights_transform(name)
    reference = models.default_weights(name).transforms()
    size = (transform.crop_size, transform.crop_size)
    for image in shapes(chelsea):
        prepared = preprocess.prepare(image, size, "weights", transform)
        assert prepared.image.size == size
        assert torch.equal(tensor(prepared), reference(image))


def test_weights_mode_scales_the_resize_with_img_size(chelsea):
    """At img_size 112 ResNet18's 256/224 becomes 128/112: torchvision's transform with those."""
    transform = preprocess.weights_transform("resnet18")
    reference = ImageClassification(crop_size=112, resize_size=128)
    for image in shapes(chelsea):
        prepared = preprocess.prepare(image, (112, 112), "weights", transform)
        assert torch.equal(tensor(prepared), reference(image))
    assert (
        "resized to 192x128"
        in preprocess.prepare(chelsea, (112, 112), "weights", transform).description
    )


def test_weights_mode_crop_lies_inside_the_image_for_any_img_size(chelsea):
    transform = preprocess.weights_transform("resnet18")
    for image in shapes(chelsea):
        for size in [(64, 48), (48, 64), (300, 100)]:
            prepared = preprocess.prepare(image, size, "weights", transform)
            assert prepared.image.size == size
            # no black border: the crop never leaves the resized image
            assert np.asarray(prepared.image).reshape(-1, 3).sum(axis=1).min() > 0


def test_letterbox_keeps_the_aspect_ratio_and_pads_with_the_mean(chelsea):
    transform = preprocess.weights_transform("resnet18")
    assert preprocess.mean_color(transform) == (124, 116, 104)
    landscape, portrait, _ = shapes(chelsea)
    wide = preprocess.prepare(landscape, (224, 224), "letterbox", transform)
    pixels = np.asarray(wide.image)
    rows = np.flatnonzero((pixels != (124, 116, 104)).any(axis=(1, 2)))
    assert (rows[0], rows[-1]) == (37, 185)  # 149 rows of image, 37 and 38 rows of padding
    assert abs(224 / 149 - 451 / 300) < 0.01
    assert (pixels[:37] == (124, 116, 104)).all() and (pixels[186:] == (124, 116, 104)).all()
    assert np.array_equal(pixels[37:186], np.asarray(preprocess.stretch(landscape, (224, 149))))
    assert np.abs(tensor(wide)[:, :37].numpy()).max() < 0.01  # the padding is the mean: about 0
    tall = np.asarray(preprocess.prepare(portrait, (224, 224), "letterbox", transform).image)
    columns = np.flatnonzero((tall != (124, 116, 104)).any(axis=(0, 2)))
    assert (columns[0], columns[-1]) == (37, 185)
    assert "letterboxed" in wide.description and "224x149" in wide.description


def test_letterbox_into_a_frame_of_the_same_shape_has_no_padding(chelsea):
    transform = preprocess.weights_transform("resnet18")
    same = preprocess.prepare(chelsea, (451 // 2, 300 // 2), "letterbox", transform)
    assert same.image.tobytes() == preprocess.stretch(chelsea, (225, 150)).tobytes()


def test_stretch_is_the_earlier_resize(chelsea):
    transform = preprocess.weights_transform("resnet18")
    prepared = preprocess.prepare(chelsea, (224, 224), "stretch", transform)
    assert prepared.image.size == (224, 224)
    expected = chelsea.resize((224, 224), Image.Resampling.BILINEAR, reducing_gap=None)
    assert prepared.image.tobytes() == expected.tobytes()
    assert prepared.record() == {
        "mode": "stretch",
        "description": "stretched from 451x300 to 224x224 (bilinear; aspect ratio not kept)",
        "transform": {
            "weights": "ResNet18_Weights.IMAGENET1K_V1", "resize_size": 256, "crop_size": 224,
            "interpolation": "bilinear", "mean": models.IMAGENET_MEAN, "std": models.IMAGENET_STD,
        },
    }  # fmt: skip


def test_an_unknown_mode_names_the_key(chelsea):
    transform = preprocess.weights_transform("resnet18")
    with pytest.raises(preprocess.PreprocessError, match="config key 'preprocess' is 'crop'"):
        preprocess.prepare(chelsea, (224, 224), "crop", transform)


def test_the_module_imports_neither_torch_nor_torchvision():
    code = "import sys, filterlens.preprocess; assert 'torch' not in sys.modules, 'torch'"
    subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, check=True,
        env={"PYTHONPATH": str(REPO / "workflow/scripts")},
    )  # fmt: skip
