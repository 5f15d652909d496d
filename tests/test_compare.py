"""Comparisons: which layers match, the shared scale, the difference, and the config check."""

import numpy as np
import pytest

from filterlens import compare, sheets
from filterlens.config import ConfigError, resolve_compare

LUT = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
IMAGES = {"chelsea": "resources/images/chelsea.png", "coffee": "resources/images/coffee.png"}


def test_layers_match_by_name_and_shape():
    a = {"conv1": (4, 8, 8), "layer1": (4, 4, 4), "only_a": (1, 1, 1)}
    b = {"conv1": (4, 8, 8), "layer1": (8, 4, 4), "only_b": (1, 1, 1)}
    compared, skipped = compare.matching_layers(a, b)
    assert compared == ["conv1"]
    assert skipped == [
        ("layer1", "shapes differ: A (4, 4, 4), B (8, 4, 4)"),
        ("only_a", "only in A"),
        ("only_b", "only in B"),
    ]


def test_shared_scale_spans_both_and_equal_values_get_equal_colors():
    a = np.array([[[0.0, 1.0]]], dtype=np.float32)
    b = np.array([[[1.0, 3.0]]], dtype=np.float32)
    low, high = compare.shared_range(a, b)
    assert (low, high) == (0.0, 3.0)
    ta, tb = (np.asarray(compare.panel_tiles(m, low, high, LUT, (2, 1))[0]) for m in (a, b))
    assert (ta[0, 1] == tb[0, 0]).all()  # the value 1.0 is the same gray in A and in B
    assert ta[0, 0, 0] == 0 and tb[0, 1, 0] == 255


def test_difference_is_symmetric_around_the_middle_color():
    a = np.array([[[2.0, 0.0, 1.0]]])
    b = np.array([[[0.0, 2.0, 1.0]]])
    limit = compare.difference_limit(a, b)
    assert limit == 2.0
    tile = np.asarray(compare.difference_tiles(a, b, limit, LUT, (3, 1))[0])[0, :, 0]
    assert tile.tolist() == [255, 0, 128]
    flat = np.asarray(compare.difference_tiles(a, a, 0.0, LUT, (3, 1))[0])[0, :, 0]
    assert flat.tolist() == [128, 128, 128]  # identical maps: all middle


def test_comparison_has_three_panels():
    maps = np.random.default_rng(0).normal(size=(5, 6, 6)).astype(np.float32)
    grid = sheets.make_grid(5, (6, 6), width=compare.PANEL_WIDTH)
    panels = [compare.panel_tiles(maps, -3, 3, LUT, grid.tile)] * 2
    panels.append(compare.difference_tiles(maps, maps, 0.0, LUT, grid.tile))
    scale = sheets.ColorScale("x", sheets.value_ticks(-3, 3), LUT)
    image = compare.compose_comparison(
        "t", ["n"], ["A", "B", "A - B"], [None] * 3, grid, panels, list("01234"), [scale] * 3
    )
    assert image.width >= 3 * grid.size[0]


def pair(a_image="chelsea", b_image="coffee", model="resnet18"):
    return {"compare": {"x": {"a": {"model": model, "image": a_image},
                              "b": {"model": model, "image": b_image}}}}  # fmt: skip


def test_config_accepts_images_and_models_it_knows():
    assert resolve_compare(pair(), IMAGES)["x"]["b"] == {"model": "resnet18", "image": "coffee"}
    assert resolve_compare({"compare": {}}, IMAGES) == {}


@pytest.mark.parametrize(
    "config, message",
    [
        (pair(b_image="nope"), "compare.x.b.image"),
        (pair(model="resnet9000"), "compare.x.a.model"),
        (pair(b_image="chelsea"), "a and b are the same"),
    ],
)
def test_config_refuses_what_cannot_be_compared(config, message):
    with pytest.raises(ConfigError, match=message):
        resolve_compare(config, IMAGES)
