"""Capture is exact: saved maps equal the layer's own computation, also where an in-place ReLU
follows and where a module runs more than once; the network is torchvision's own for its weights;
checkpoints and forward passes that would write NaN, or fail on the image size, are refused."""

import warnings
from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from torchvision.models._api import WeightsEnum

from conftest import random_state, torchvision_built
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


# --- construction: the network is torchvision's own, for its weights ------------------------

# A dozen and more architectures, every family whose builder differs: GoogLeNet and Inception-v3
# (transform_input, auxiliary heads), DenseNet (old key names), MNASNet (versioned state dict),
# ViT and MaxViT (image size), ResNeXt (groups), Swin, ConvNeXt, EfficientNet, RegNet, ...
ARCHITECTURES = [
    "alexnet", "googlenet", "inception_v3", "resnet18", "resnext50_32x4d", "densenet121",
    "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0", "squeezenet1_1",
    "shufflenet_v2_x0_5", "mnasnet0_5", "regnet_y_400mf", "convnext_tiny", "swin_t", "maxvit_t",
    "vit_b_16",
]  # fmt: skip


def input_for(name: str) -> torch.Tensor:
    """A small input the model takes (ViT and MaxViT take only their 224 x 224)."""
    height, width = models.default_weights(name).meta["min_size"]
    torch.manual_seed(2)
    return torch.randn(1, 3, max(height, 96), max(width, 80))


def assert_same_capture(one: torch.nn.Module, other: torch.nn.Module, x: torch.Tensor) -> int:
    """Every map and the logits equal bit for bit; returns how many maps were compared."""
    a, b = models.capture(one, x, ["*"]), models.capture(other, x, ["*"])
    assert [m.name for m in a.maps] == [m.name for m in b.maps]
    for mine, theirs in zip(a.maps, b.maps):
        assert np.array_equal(mine.array, theirs.array), mine.name
    assert torch.equal(a.logits, b.logits)
    return len(a.maps)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_pretrained_construction_is_torchvisions_builder_with_the_same_dict(name):
    state = random_state(name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net = models.build(name, state, seed=0, construction="pretrained")
        x = input_for(name)
        ours = models.capture(net.module, x, None, name=name)
    assert [str(w.message) for w in caught] == []
    reference = torchvision_built(name, state)
    mine, theirs = net.module.state_dict(), reference.state_dict()
    assert list(mine) == list(theirs)
    assert all(torch.equal(mine[key], theirs[key]) for key in mine)
    assert assert_same_capture(net.module, reference, x) > 0
    assert ours.maps and not net.module.training
    assert net.construction["construction"] == "pretrained"
    assert net.construction["builder"] == (
        f"torchvision.models.get_model({name!r}, weights={models.default_weights(name)})"
    )


@pytest.mark.parametrize("name", ["googlenet", "inception_v3"])
def test_googlenet_and_inception_are_built_as_torchvision_builds_them_for_weights(name):
    """Their builders set transform_input=True for the weights: the plain network, given the same
    checkpoint, computes other first maps. The record says what the builder set."""
    state = random_state(name)
    pretrained = models.build(name, state, construction="pretrained")
    plain = models.build(name, state, construction="plain")
    assert pretrained.construction["transform_input"] is True
    assert plain.construction["transform_input"] is False
    assert pretrained.construction["builder_kwargs"] == {
        "transform_input": True, "aux_logits": True, "init_weights": False, "num_classes": 1000,
    }  # fmt: skip
    assert plain.construction["builder_kwargs"] == {"init_weights": True}
    x = input_for(name)
    first = "conv1.conv" if name == "googlenet" else "Conv2d_1a_3x3.conv"
    a = models.capture(pretrained.module, x, [first]).maps[0].array
    b = models.capture(plain.module, x, [first]).maps[0].array
    assert np.abs(a - b).max() > 0.01


def test_plain_and_pretrained_resnet18_are_the_same_network():
    state = random_state("resnet18")
    pretrained = models.build("resnet18", state, construction="pretrained").module
    plain = models.build("resnet18", state, construction="plain").module
    assert_same_capture(pretrained, plain, input_for("resnet18"))


@pytest.mark.parametrize("name", ["googlenet", "inception_v3", "resnet18"])
def test_plain_construction_is_get_model_without_weights(name):
    state = random_state(name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net = models.build(name, state, construction="plain")
        random = models.build(name, None, seed=4, construction="plain")
    assert [str(w.message) for w in caught] == []  # e.g. no init_weights FutureWarning
    kwargs = models._PLAIN_KWARGS.get(name, {})
    reference = torchvision.models.get_model(name, weights=None, **kwargs)
    reference.load_state_dict(state)
    assert_same_capture(net.module, reference.eval(), input_for(name))
    assert random.construction["construction"] == "plain"


def test_random_weights_with_pretrained_construction_are_seeded_and_load_nothing():
    one = models.build("googlenet", None, seed=3, construction="pretrained")
    two = models.build("googlenet", None, seed=3, construction="pretrained")
    other = models.build("googlenet", None, seed=4, construction="pretrained")
    assert one.construction["transform_input"] is True
    assert torch.equal(one.module.conv1.conv.weight, two.module.conv1.conv.weight)
    assert not torch.equal(one.module.conv1.conv.weight, other.module.conv1.conv.weight)


def test_building_downloads_nothing_and_restores_torchvision():
    original_get, original_load = WeightsEnum.get_state_dict, torch.nn.Module.load_state_dict
    with mock.patch("torchvision.models._api.load_state_dict_from_url", side_effect=AssertionError):
        models.build("resnet18", random_state("resnet18"), construction="pretrained")
        bad = random_state("resnet18")
        bad["fc.bias"] = bad["fc.bias"].double()
        with pytest.raises(models.CheckpointError):
            models.build("resnet18", bad, construction="pretrained")
    assert WeightsEnum.get_state_dict is original_get
    assert torch.nn.Module.load_state_dict is original_load


@pytest.mark.parametrize(
    ("name", "heads"), [("googlenet", ("aux1.", "aux2.")), ("inception_v3", ("AuxLogits.",))]
)
@pytest.mark.parametrize("construction", ["pretrained", "plain"])
def test_eval_only_checkpoint_without_auxiliary_heads_loads(name, heads, construction):
    full = random_state(name)
    eval_only = models._like(full, ((k, v) for k, v in full.items() if not k.startswith(heads)))
    assert len(eval_only) < len(full)
    net = models.build(name, eval_only, construction=construction)
    assert "auxiliary head" in " ".join(net.construction["notes"])
    if construction == "pretrained":
        reference = torchvision_built(name, full)  # the heads never run in eval mode
    else:
        reference = torchvision.models.get_model(name, weights=None, init_weights=True)
        reference.load_state_dict(full)
    assert_same_capture(net.module, reference.eval(), input_for(name))


def test_a_partial_auxiliary_head_is_refused():
    state = random_state("googlenet")
    del state["aux1.fc2.weight"]
    with pytest.raises(models.ModelError, match="aux1.fc2.weight"):
        models.build("googlenet", state, construction="pretrained")


def test_resolve_construction():
    assert models.resolve_construction("auto", "imagenet") == "pretrained"
    assert models.resolve_construction("auto", "random") == "plain"
    assert models.resolve_construction("auto", "my/state.pth") == "plain"
    assert models.resolve_construction("plain", "imagenet") == "plain"
    assert models.resolve_construction("pretrained", "random") == "pretrained"
    with pytest.raises(models.ModelError, match="'construction'"):
        models.resolve_construction("torchvision", "imagenet")


# --- checkpoints are bounded: dtypes and values ---------------------------------------------


@pytest.mark.parametrize("construction", ["pretrained", "plain"])
@pytest.mark.parametrize(
    ("key", "dtype"), [("conv1.weight", torch.float64), ("fc.bias", torch.int64)]
)
def test_a_tensor_of_another_dtype_is_refused_by_name(construction, key, dtype):
    state = random_state("resnet18")
    state[key] = state[key].to(dtype)
    with pytest.raises(models.CheckpointError) as err:
        models.build("resnet18", state, construction=construction)
    message = str(err.value)
    assert f"'{key}'" in message and str(dtype).removeprefix("torch.") in message
    assert "float32" in message and "another checkpoint" in message


def test_batchnorm_int64_counters_load():
    state = random_state("resnet18")
    assert state["bn1.num_batches_tracked"].dtype == torch.int64
    net = models.build("resnet18", state, construction="pretrained")
    assert torch.equal(net.module.bn1.running_var, state["bn1.running_var"])


@pytest.mark.parametrize("construction", ["pretrained", "plain"])
@pytest.mark.parametrize(
    ("key", "value", "says"),
    [("layer1.0.bn1.running_var", float("nan"), "1 NaN and 0 Inf"),
     ("fc.weight", float("inf"), "0 NaN and 1 Inf")],
)  # fmt: skip
def test_a_tensor_with_nan_or_inf_is_refused_by_name(construction, key, value, says):
    state = random_state("resnet18")
    state[key] = state[key].clone()
    state[key].view(-1)[3] = value
    with pytest.raises(models.CheckpointError) as err:
        models.build("resnet18", state, construction=construction)
    message = str(err.value)
    assert f"'{key}' holds {says} of {state[key].numel()} values" in message
    assert "broken" in message and "another checkpoint" in message


def test_a_value_that_is_not_a_tensor_is_refused():
    state = random_state("resnet18")
    state["fc.bias"] = [0.0] * 1000
    with pytest.raises(models.CheckpointError, match="'fc.bias' is a list, not a tensor"):
        models.build("resnet18", state)


# --- forward passes that go wrong --------------------------------------------------------


def test_nan_in_a_map_names_the_first_bad_layer(resnet18, x):
    bad = x.clone()
    bad[0, 0, 5, 5] = float("nan")
    with pytest.raises(models.NonFiniteError) as err:
        models.capture(resnet18, bad, None, name="resnet18")
    message = str(err.value)
    assert message.startswith("resnet18: layer 'conv1' output holds")
    assert "the weights are broken" in message and "another checkpoint" in message


def test_inf_in_a_later_layer_names_that_layer():
    model = models.build_model("resnet18", seed=0)
    with torch.no_grad():
        model.layer2[0].conv1.weight.view(-1)[0] = float("inf")
    torch.manual_seed(1)
    with pytest.raises(models.NonFiniteError, match="layer 'layer2.0.conv1' output holds"):
        models.capture(model, torch.randn(1, 3, 64, 64), None, name="resnet18")


def test_non_finite_logits_are_refused_even_when_the_maps_are_fine():
    model = models.build_model("resnet18", seed=0)
    with torch.no_grad():
        model.fc.bias[7] = float("nan")
    torch.manual_seed(1)
    with pytest.raises(models.NonFiniteError, match=r"output \(logits\) holds 1 NaN and 0 Inf"):
        models.capture(model, torch.randn(1, 3, 64, 64), ["conv1"], name="resnet18")


def test_vit_at_a_size_it_cannot_take_says_the_size_it_needs():
    vit = models.build_model("vit_b_16", seed=0)
    with pytest.raises(models.InputSizeError) as err:
        models.capture(vit, torch.zeros(1, 3, 64, 64), None, name="vit_b_16")
    assert str(err.value).startswith(
        "vit_b_16 takes images of exactly 224x224 pixels, not img_size 64x64"
    )
    assert str(err.value).endswith("set img_size: 224")


def test_a_cnn_too_small_for_its_pooling_says_the_smallest_size(alexnet):
    with pytest.raises(models.InputSizeError) as err:
        models.capture(alexnet, torch.zeros(1, 3, 16, 20), None, name="alexnet")
    message = str(err.value)
    assert message.startswith("alexnet cannot run on an image of img_size 20x16 (")
    assert message.endswith("use an img_size of at least 63x63 (torchvision's min_size)")


def test_an_error_not_about_sizes_gets_no_size_advice():
    class Broken(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError("cuDNN error: CUDNN_STATUS_EXECUTION_FAILED")

    with pytest.raises(models.ModelError) as err:
        models.capture(Broken(), torch.zeros(1, 3, 8, 8), None, name="broken")
    assert type(err.value) is models.ModelError
    assert str(err.value) == (
        "broken failed on an image of img_size 8x8: cuDNN error: CUDNN_STATUS_EXECUTION_FAILED"
    )
