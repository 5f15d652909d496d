"""Receptive fields: analytic values for hand-built models and ResNet18, and every measured box
against a brute-force gradient (one per unit, on an independently linearized copy of the model)
where padding, dilation, pooling, strided shortcuts and concatenations combine."""

import copy
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from filterlens import models, receptive
from filterlens.checkout import REPO
from filterlens.receptive import Field, FieldError


def linear_copy(model: nn.Module) -> nn.Module:
    """The brute force's own linearization, by module surgery: ReLU and BatchNorm as identity,
    max-pooling as average pooling over the same windows, every weight and bias positive."""
    linear = copy.deepcopy(model).double().eval()
    for module in list(linear.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, (nn.ReLU, nn.BatchNorm2d)):
                setattr(module, name, nn.Identity())
            elif isinstance(child, nn.MaxPool2d):
                assert child.dilation == 1
                setattr(module, name, nn.AvgPool2d(child.kernel_size, child.stride, child.padding,
                                                   ceil_mode=child.ceil_mode))  # fmt: skip
    with torch.no_grad():
        for p in linear.parameters():
            p.copy_(p.abs() + 0.1)
    return linear


def brute_boxes(model, size, wanted: dict[str, list[tuple[int, int]]]):
    """layer -> {unit: (top, left, bottom, right)} of the gradient support of every listed unit,
    one batch item per (layer, unit), on `linear_copy(model)`."""
    jobs = [(layer, unit) for layer, units in wanted.items() for unit in units]
    x = torch.ones(len(jobs), 3, *size, dtype=torch.float64, requires_grad=True)
    outputs, calls = {}, {}
    linear = linear_copy(model)

    def hook(name):
        def record(_m, _i, out):
            call_id = models.next_call_id(calls, name)
            if call_id in wanted:
                outputs[call_id] = out

        return record

    for name, module in linear.named_modules():
        if name:
            module.register_forward_hook(hook(name))
    linear(x)
    target = sum(outputs[layer][b, :, y, x_].sum() for b, (layer, (y, x_)) in enumerate(jobs))
    (grad,) = torch.autograd.grad(target, x)
    found = {layer: {} for layer in wanted}
    for b, (layer, unit) in enumerate(jobs):
        seen = grad[b].abs().sum(0) != 0
        rows, cols = torch.nonzero(seen.any(1)).flatten(), torch.nonzero(seen.any(0)).flatten()
        found[layer][unit] = (int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)
    return found


def map_sizes(model, size, layers):
    result = models.capture(model, torch.zeros(1, 3, *size), layers)
    return {m.name: m.array.shape[1:] for m in result.maps}


def some_units(h, w):
    """Every unit of a small map; else the corners, the centre, edges' middles and neighbours."""
    if h * w <= 36:
        return [(y, x) for y in range(h) for x in range(w)]
    ys, xs = sorted({0, 1, h // 2, h - 1}), sorted({0, 1, w // 2, w - 1})
    return [(y, x) for y in ys for x in xs]


def assert_boxes_match(model, size, layers, every_unit=False):
    fields = {f.layer: f for f in receptive.measure_fields(model, size, layers)}
    shapes = map_sizes(model, size, layers)
    units = {
        layer: [(y, x) for y in range(h) for x in range(w)] if every_unit else some_units(h, w)
        for layer, (h, w) in shapes.items()
    }
    brute = brute_boxes(model, size, units)
    for layer, boxes in brute.items():
        assert fields[layer].map_size == shapes[layer]
        for unit, box in boxes.items():
            assert fields[layer].box(*unit) == box, (layer, unit, fields[layer])
    return fields


def grid(field: Field):
    return field.size, field.stride, field.offset


class TwoConvs(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 5, 3, stride=2, padding=1)

    def forward(self, x):
        return self.conv2(self.relu(self.conv1(x)))


def test_two_strided_convs_equal_the_analytic_field():
    fields = assert_boxes_match(TwoConvs(), (32, 24), ["conv1", "conv2"], every_unit=True)
    # conv1: 3 px, stride 2, from row -1; conv2 adds 2 units of conv1 each side: 3 + 2 * 2 * 2
    assert grid(fields["conv1"]) == ((3, 3), (2, 2), (-1, -1))
    assert grid(fields["conv2"]) == ((7, 7), (4, 4), (-3, -3))
    assert fields["conv2"].map_size == (8, 6) and fields["conv2"].box(0, 5) == (0, 17, 4, 24)


@pytest.fixture(scope="module")
def resnet18():
    return models.build_model("resnet18", seed=0)


def test_resnet18_conv1_is_7x7_at_stride_2_clipped_at_borders(resnet18):
    (field,) = receptive.measure_fields(resnet18, (224, 224), ["conv1"])
    assert grid(field) == ((7, 7), (2, 2), (-3, -3)) and field.map_size == (112, 112)
    assert field.box(0, 0) == (0, 0, 4, 4)
    assert field.box(10, 20) == (17, 37, 24, 44)
    assert field.box(111, 111) == (219, 219, 224, 224)
    assert not field.whole


def test_resnet18_fields_grow_as_the_architecture_says(resnet18):
    layers = ["maxpool", "layer1.1.conv2", "layer2.0.downsample.0", "layer2.1.conv2",
              "layer3.1.conv2", "layer4.1.conv2", "layer4.1.relu_1", "avgpool"]  # fmt: skip
    fields = {f.layer: f for f in receptive.measure_fields(resnet18, (224, 224), layers)}
    # maxpool 3/2 adds 2 conv1 units; each 3x3 conv adds 2 units of its input's stride
    assert grid(fields["maxpool"]) == ((11, 11), (4, 4), (-5, -5))
    assert grid(fields["layer1.1.conv2"]) == ((43, 43), (4, 4), (-21, -21))
    assert grid(fields["layer2.0.downsample.0"]) == ((43, 43), (8, 8), (-21, -21))  # 1x1 shortcut
    assert grid(fields["layer2.1.conv2"]) == ((99, 99), (8, 8), (-49, -49))
    assert grid(fields["layer3.1.conv2"]) == ((211, 211), (16, 16), (-105, -105))
    assert grid(fields["layer4.1.conv2"]) == ((435, 435), (32, 32), (-217, -217))
    assert grid(fields["layer4.1.relu_1"]) == grid(fields["layer4.1.conv2"])  # shortcut inside
    deep = fields["layer4.1.conv2"]
    assert deep.covers(3, 3) and not deep.covers(0, 0) and not deep.whole
    assert fields["avgpool"].whole and fields["avgpool"].box(0, 0) == (0, 0, 224, 224)


def test_resnet18_boxes_equal_brute_force_on_a_small_input(resnet18):
    layers = ["conv1", "maxpool", "layer2.0.downsample.0", "layer2.1.conv2", "layer4.1.conv2"]
    assert_boxes_match(resnet18, (40, 56), layers)


def test_densenet_concatenations_equal_brute_force():
    torch.manual_seed(0)
    model = torchvision.models.DenseNet(growth_rate=4, block_config=(2, 2), num_init_features=8,
                                        bn_size=2).eval()  # fmt: skip
    layers = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    fields = assert_boxes_match(model, (48, 40), layers)
    # the first dense layer's 3x3 conv after conv0 (7/2) and pool0 (3/2): 7 + 2*2 + 2*4
    assert grid(fields["features.denseblock1.denselayer1.conv2"]) == ((19, 19), (4, 4), (-9, -9))


class Branches(nn.Module):
    """Inception-like: branches that look up, down, wide (dilated) and through a functional
    max-pool, concatenated; the union of their fields differs per axis from every branch's."""

    def __init__(self, pool=F.max_pool2d):
        super().__init__()
        self.pool = pool
        self.stem = nn.Conv2d(3, 4, 5, stride=2, padding=2)
        self.up = nn.Sequential(nn.ZeroPad2d((0, 0, 2, 0)), nn.Conv2d(4, 2, (3, 1)))  # rows y-2..y
        self.down = nn.Sequential(nn.ZeroPad2d((0, 0, 0, 2)), nn.Conv2d(4, 2, (3, 1)))  # y..y+2
        self.wide = nn.Conv2d(4, 3, (1, 3), padding=(0, 2), dilation=2)  # columns x-2, x, x+2
        self.after = nn.Conv2d(11, 4, 3, stride=2, padding=1)
        self.relu = nn.ReLU()

    def forward(self, x):
        x = self.relu(self.stem(x))
        pooled = self.pool(x, 3, 1, 1)
        y = torch.cat([self.up(x), self.down(x), self.wide(x), pooled], 1)
        return self.after(self.relu(y))


class BranchesLinear(Branches):
    def __init__(self):
        super().__init__(pool=F.avg_pool2d)  # the brute force's max-pool: same windows


def test_concatenated_branches_give_the_union_per_axis():
    model = Branches()
    # 29 columns: the dilated taps that fall into padding at the right border would see only
    # pixels beyond the image (see the test of holes below)
    size = (36, 29)
    fields = {f.layer: f for f in receptive.measure_fields(model, size, ["up", "wide", "after"])}
    reference = BranchesLinear()
    reference.load_state_dict(model.state_dict())
    shapes = map_sizes(reference, size, ["after", "up", "wide"])
    brute = brute_boxes(reference, size, {
        layer: [(y, x) for y in range(h) for x in range(w)] for layer, (h, w) in shapes.items()
    })  # fmt: skip
    for layer, boxes in brute.items():
        for unit, box in boxes.items():
            assert fields[layer].box(*unit) == box, (layer, unit)
    # stem: 5 px at stride 2 from -2. up: stem rows y-2..y, 1 column; wide: columns x-2..x+2
    assert grid(fields["up"]) == ((9, 5), (2, 2), (-6, -2))
    assert grid(fields["wide"]) == ((5, 13), (2, 2), (-2, -6))
    # after the union (rows y-2..y+2 from up and down, columns from wide) a 3x3 at stride 2
    assert grid(fields["after"]) == ((17, 17), (4, 4), (-8, -8))


def test_a_dilated_kernel_with_holes_keeps_its_span_at_the_border():
    """The box is the field's span clipped to the image: where a dilated kernel's holes are
    wider than what its input sees, the pixels a border unit really sees may begin a hole
    later (here unit 1 sees rows 1 and 4, its box starts at 0)."""
    model = nn.Sequential()
    model.add_module("conv", nn.Conv2d(3, 2, 3, padding=3, dilation=3))
    (field,) = receptive.measure_fields(model, (12, 12), ["conv"])
    assert grid(field) == ((7, 7), (1, 1), (-3, -3))
    brute = brute_boxes(model, (12, 12), {"conv": [(1, 5), (5, 5), (0, 0)]})["conv"]
    assert brute[(1, 5)] == (1, 2, 5, 9) and field.box(1, 5) == (0, 2, 5, 9)
    assert brute[(5, 5)] == field.box(5, 5) and brute[(0, 0)] == field.box(0, 0)


class Unpadded(nn.Module):
    """A stride that does not divide the input: the last input row and column are never read."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=2)
        self.pool = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.head = nn.Conv2d(4, 4, 3, padding=1, dilation=1)

    def forward(self, x):
        return self.head(self.pool(self.conv(x)))


def test_unread_border_and_ceil_mode_pooling_equal_brute_force():
    fields = assert_boxes_match(Unpadded(), (34, 35), ["conv", "pool", "head"], every_unit=True)
    assert fields["conv"].seen == (0, 0, 33, 35)
    assert grid(fields["head"]) == ((15, 15), (4, 4), (-4, -4))
    assert fields["head"].map_size == (8, 8)


class Gated(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.se = torchvision.ops.SqueezeExcitation(8, 2)
        self.conv2 = nn.Conv2d(8, 4, 3, padding=1)

    def forward(self, x):
        return self.conv2(self.se(self.conv1(x)))


def test_a_squeeze_excitation_gate_does_not_widen_the_field():
    fields = {f.layer: f for f in receptive.measure_fields(Gated(), (20, 20), ["se.fc1", "conv2"])}
    assert grid(fields["conv2"]) == ((5, 5), (1, 1), (-2, -2))  # two 3x3 convs, gate left out
    assert fields["se.fc1"].whole  # the gate itself is computed from the whole image


class Split(nn.Module):
    """ShuffleNet's move: a concatenation split again by channels, one half passed on."""

    def __init__(self):
        super().__init__()
        self.wide = nn.Conv2d(3, 2, 5, padding=2)
        self.narrow = nn.Conv2d(3, 2, 1)
        self.head = nn.Conv2d(2, 2, 1)

    def forward(self, x):
        both = torch.cat([self.narrow(x), self.wide(x)], 1)
        first, _ = both.chunk(2, dim=1)  # the narrow half only
        return self.head(first)


def test_a_split_concatenation_is_followed_channel_by_channel():
    (field,) = receptive.measure_fields(Split(), (12, 12), ["head"])
    assert grid(field) == ((1, 1), (1, 1), (0, 0))


def test_a_deep_chain_keeps_its_whole_field():
    """A hundred 3x3 convolutions: the outermost rows' gradients, about 3**-100, would underflow
    if gradients were not kept at 0 or 1."""
    model = nn.Sequential(*(nn.Conv2d(1 if i else 3, 1, 3, padding=1) for i in range(100)))
    (field,) = receptive.measure_fields(model, (240, 230), ["99"])
    assert grid(field) == ((201, 201), (1, 1), (-100, -100))


class Adaptive(nn.Module):
    def __init__(self, out):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(out)
        self.head = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        return self.head(self.pool(self.conv(x)))


def test_adaptive_pooling_keeps_its_windows_at_the_real_size():
    fields = assert_boxes_match(Adaptive(4), (16, 8), ["pool", "head"], every_unit=True)
    # 16 x 8 -> 4 x 4: windows of 4 rows and 2 columns
    assert grid(fields["pool"]) == ((6, 4), (4, 2), (-1, -1))


def test_adaptive_pooling_with_uneven_windows_is_refused():
    with pytest.raises(FieldError, match="head comes after adaptive pooling from 10x10 to 4x4"):
        receptive.measure_fields(Adaptive(4), (10, 10), ["conv", "head"])
    (before,) = receptive.measure_fields(Adaptive(4), (10, 10), ["conv"])
    assert grid(before) == ((3, 3), (1, 1), (-1, -1))


def test_an_unknown_layer_is_named():
    with pytest.raises(FieldError, match="conv3"):
        receptive.measure_fields(TwoConvs(), (16, 16), ["conv1", "conv3"])


def test_box_cell_and_whole_of_a_field():
    f = Field("l", (7, 7), (224, 224), (435, 435), (32, 32), (-217, -217), (0, 0, 224, 224))
    assert f.span(0, 6) == (-217, -25, 218, 410)
    assert f.box(0, 6) == (0, 0, 218, 224) and not f.covers(0, 6) and f.covers(3, 3)
    assert f.cell(3, 3) == (80, 80, 112, 112)  # stride-sized, around the centre, 96.5
    assert f.cell(0, 0) == (0, 0, 16, 16)  # clipped
    with pytest.raises(IndexError, match="outside the 7x7 map"):
        f.box(7, 0)


def test_table_round_trip(tmp_path, resnet18):
    fields = receptive.measure_fields(resnet18, (64, 48), ["conv1", "layer4.1.conv2", "avgpool"])
    path = tmp_path / "receptive_fields.tsv"
    receptive.write_table(path, fields)
    assert list(receptive.read_table(path).values()) == fields
    header, *rows = path.read_text().splitlines()
    assert header.split("\t") == list(receptive.COLUMNS)
    assert rows[2].split("\t")[-1] == "1"  # avgpool: whole


def test_the_set_step_reads_fields_without_torch():
    """Only measuring needs torch: the set step's modules start without it."""
    code = ("import sys; from filterlens import receptive, topimages, examples, filtermap; "
            "print('torch' in sys.modules)")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=REPO / "workflow/scripts", check=True)  # fmt: skip
    assert result.stdout.strip() == "False"
