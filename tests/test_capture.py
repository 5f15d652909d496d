"""Capture is exact: saved maps equal the layer's own computation, also where an in-place ReLU
follows and where a module runs more than once."""

import pytest
import torch
import torch.nn.functional as F

from filterlens import models


@pytest.fixture(scope="module")
def x():
    torch.manual_seed(1)
    return torch.randn(1, 3, 80, 72)


@pytest.fixture(scope="module")
def alexnet():
    return models.build_model("alexnet", seed=0)


@pytest.fixture(scope="module")
def resnet18():
    return models.build_model("resnet18", seed=0)


def test_alexnet_first_conv_equals_conv2d_despite_inplace_relu(alexnet, x):
    assert alexnet.features[1].inplace  # the ReLU after features.0 overwrites its input
    result = models.capture(alexnet, x, ["features.0"])
    (layer,) = result.maps
    conv = alexnet.features[0]
    expected = F.conv2d(x, conv.weight, conv.bias, conv.stride, conv.padding)[0]
    assert layer.name == "features.0" and layer.kind == "Conv2d"
    assert torch.equal(torch.from_numpy(layer.array), expected.detach())
    assert (layer.array < 0).any()  # a ReLU's output would have none


def test_default_selection_is_every_conv2d_in_network_order(resnet18, x):
    result = models.capture(resnet18, x, None)
    convs = [n for n, m in resnet18.named_modules() if isinstance(m, torch.nn.Conv2d)]
    assert [m.name for m in result.maps] == convs and len(convs) == 20
    assert sum(m.array.shape[0] for m in result.maps) == 4800


def test_reused_relu_gives_one_exact_map_per_call(resnet18, x):
    result = models.capture(resnet18, x, ["maxpool", "layer1.0.relu*"])
    maps = {m.name: torch.from_numpy(m.array) for m in result.maps}
    assert list(maps) == ["maxpool", "layer1.0.relu", "layer1.0.relu_1"]
    block = resnet18.layer1[0]
    identity = maps["maxpool"].unsqueeze(0)
    with torch.no_grad():
        first = F.relu(block.bn1(block.conv1(identity)))
        second = F.relu(block.bn2(block.conv2(first)) + identity)
    assert torch.allclose(maps["layer1.0.relu"], first[0], atol=1e-6)
    assert torch.allclose(maps["layer1.0.relu_1"], second[0], atol=1e-6)
    assert not torch.allclose(maps["layer1.0.relu"], maps["layer1.0.relu_1"])


def test_a_single_later_call_can_be_selected_by_its_suffix(resnet18, x):
    result = models.capture(resnet18, x, ["layer2.1.relu_1"])
    assert [m.name for m in result.maps] == ["layer2.1.relu_1"]


def test_max_filters_keeps_the_first_filters(alexnet, x):
    full = models.capture(alexnet, x, ["features.3"]).maps[0].array
    capped = models.capture(alexnet, x, ["features.3"], max_filters=5).maps[0].array
    assert capped.shape[0] == 5 and (capped == full[:5]).all()


def test_pattern_matching_nothing_lists_selectable_layers(resnet18, x):
    with pytest.raises(models.LayerSelectionError) as err:
        models.capture(resnet18, x, ["layer9.*"])
    message = str(err.value)
    assert "'layer9.*' matches no layer" in message
    assert "layer4.1.conv2" in message and "layer1.0.relu_1" in message


def test_explicit_layer_that_is_not_a_feature_map_is_refused(resnet18, x):
    with pytest.raises(models.LayerSelectionError, match="fc"):
        models.capture(resnet18, x, ["fc"])


def test_glob_skips_outputs_that_are_not_feature_maps(resnet18, x):
    result = models.capture(resnet18, x, ["*"])
    assert "fc" not in [m.name for m in result.maps]
    assert all(m.array.ndim == 3 for m in result.maps)


def test_top_predictions_are_sorted_probabilities():
    logits = torch.tensor([[0.0, 3.0, 1.0, 2.0, -1.0, 0.5]])
    rows = models.top_predictions(logits, ["a", "b", "c", "d", "e", "f"], k=3)
    assert [r[1] for r in rows] == [1, 3, 2] and [r[2] for r in rows] == ["b", "d", "c"]
    assert rows[0][3] > rows[1][3] > rows[2][3]


def test_seeded_random_init_is_reproducible(x):
    one = models.build_model("resnet18", seed=3)
    two = models.build_model("resnet18", seed=3)
    other = models.build_model("resnet18", seed=4)
    assert torch.equal(one.conv1.weight, two.conv1.weight)
    assert not torch.equal(one.conv1.weight, other.conv1.weight)


def test_wrong_architecture_checkpoint_is_refused():
    alex = models.build_model("alexnet", seed=0).state_dict()
    with pytest.raises(ValueError, match="does not fit torchvision's resnet18"):
        models.build_model("resnet18", alex)
