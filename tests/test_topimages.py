"""Top images per filter across a set, against hand-computed rankings: means, maxima, positions,
ties by image name, k larger than the set, and the receptive-field box of each maximum."""

import numpy as np
import pytest

from conftest import write_activations
from filterlens import topimages
from filterlens.receptive import Field

# layer l: 2 filters of 2 x 2 maps from a 4 x 4 input; layer g: 1 filter, one unit (global)
MAPS = {
    "a": {"l": [[[1, 2], [3, 4]], [[0, 0], [0, 0]]], "g": [[[7]]]},
    "b": {"l": [[[10, 0], [0, 0]], [[-1, -1], [-1, -1]]], "g": [[[7]]]},
    "c": {"l": [[[1, 1], [1, 1]], [[0, 5], [0, 0]]], "g": [[[9]]]},
}
FIELDS = {
    # unit y sees rows 2y - 1 .. 2y + 1: (0, 0) -> (0, 0, 2, 2), (1, 1) -> (1, 1, 4, 4)
    "l": Field("l", (2, 2), (4, 4), (3, 3), (2, 2), (-1, -1), (0, 0, 4, 4)),
    "g": Field("g", (1, 1), (4, 4), (4, 4), (4, 4), (0, 0), (0, 0, 4, 4)),
}


def activations(root, image, maps):
    return write_activations(root / image / "activations", maps)


@pytest.fixture
def image_set(tmp_path):
    # given out of name order: ties must still go to the name that sorts first
    return topimages.load_set({i: activations(tmp_path, i, MAPS[i]) for i in ("b", "c", "a")})


def ranked(rows, layer, f, by):
    return [(r[4], r[5], r[6], r[7], r[8:12], r[12]) for r in rows if r[:3] == (layer, f, by)]


def test_hand_computed_top_two(image_set):
    rows = topimages.rank_images(image_set, 2, FIELDS)
    # filter 0 by mean: a and b tie at 2.5 -> a first (name); their maxima at (1, 1) and (0, 0)
    assert ranked(rows, "l", 0, "mean") == [
        ("a", 2.5, 1, 1, (1, 1, 4, 4), 0), ("b", 2.5, 0, 0, (0, 0, 2, 2), 0),
    ]  # fmt: skip
    assert ranked(rows, "l", 0, "max") == [
        ("b", 10.0, 0, 0, (0, 0, 2, 2), 0), ("a", 4.0, 1, 1, (1, 1, 4, 4), 0),
    ]  # fmt: skip
    # filter 1: c's 5 at (0, 1); a's maximum 0 is everywhere -> the first cell, (0, 0)
    assert ranked(rows, "l", 1, "mean") == [
        ("c", 1.25, 0, 1, (0, 1, 2, 4), 0), ("a", 0.0, 0, 0, (0, 0, 2, 2), 0),
    ]  # fmt: skip
    assert ranked(rows, "l", 1, "max") == [
        ("c", 5.0, 0, 1, (0, 1, 2, 4), 0), ("a", 0.0, 0, 0, (0, 0, 2, 2), 0),
    ]  # fmt: skip
    # the global layer's one unit sees the whole image; a and b tie at 7
    assert ranked(rows, "g", 0, "max") == [
        ("c", 9.0, 0, 0, (0, 0, 4, 4), 1), ("a", 7.0, 0, 0, (0, 0, 4, 4), 1),
    ]  # fmt: skip


def test_row_order_is_layer_filter_measure_rank(image_set):
    rows = topimages.rank_images(image_set, 2, FIELDS)
    assert [r[:4] for r in rows] == [
        (layer, f, by, rank)
        for layer, filters in (("l", 2), ("g", 1)) for f in range(filters)
        for by in ("mean", "max") for rank in (1, 2)
    ]  # fmt: skip


def test_k_larger_than_the_set_lists_every_image_once(image_set):
    rows = topimages.rank_images(image_set, 5, FIELDS)
    assert [r[4] for r in rows if r[:3] == ("l", 1, "mean")] == ["c", "a", "b"]
    assert [r[3] for r in rows if r[:3] == ("l", 1, "mean")] == [1, 2, 3]
    assert len(rows) == 3 * 2 * 3  # 3 filters, 2 measures, min(5, 3) images


def test_means_are_the_float64_means_of_the_maps(tmp_path):
    rng = np.random.default_rng(1)
    maps = {i: {"l": (rng.standard_normal((3, 5, 7)) * 100).astype(np.float32)} for i in "xy"}
    image_set = topimages.load_set({i: activations(tmp_path, i, maps[i]) for i in "xy"})
    field = {"l": Field("l", (5, 7), (5, 7), (1, 1), (1, 1), (0, 0), (0, 0, 5, 7))}
    rows = topimages.rank_images(image_set, 2, field)
    for layer, f, by, _, image, value, y, x, *_ in rows:
        a = maps[image]["l"][f].astype(np.float64)
        if by == "mean":
            assert value == a.mean()
        else:
            assert value == a.max() == a[y, x]
            assert (y, x) == np.unravel_index(np.argmax(a), a.shape)


def test_table_round_trip_and_grouping(image_set, tmp_path):
    path = tmp_path / topimages.FILENAME
    topimages.write_table(path, topimages.rank_images(image_set, 3, FIELDS))
    assert path.read_text().splitlines()[0].split("\t") == list(topimages.COLUMNS)
    examples = topimages.read_table(path)
    grouped = topimages.by_filter(examples, "l", "max")
    assert list(grouped) == [0, 1]
    assert [(e.rank, e.image, e.value, e.box, e.whole) for e in grouped[0]] == [
        (1, "b", 10.0, (0, 0, 2, 2), False), (2, "a", 4.0, (1, 1, 4, 4), False),
        (3, "c", 1.0, (0, 0, 2, 2), False),
    ]  # fmt: skip
    assert all(e.whole for e in topimages.by_filter(examples, "g", "mean")[0])


def test_an_image_with_other_layers_is_refused(tmp_path):
    odd = {"l": np.zeros((2, 3, 3), np.float32), "g": np.zeros((1, 1, 1), np.float32)}
    folders = {"a": activations(tmp_path, "a", MAPS["a"]), "odd": activations(tmp_path, "odd", odd)}
    with pytest.raises(topimages.SetError, match="odd does not fit the set: its layer l is 2 x 3"):
        topimages.load_set(folders)


def test_fields_for_another_input_size_are_refused(image_set):
    topimages.check_fields(image_set, FIELDS, (4, 4))
    with pytest.raises(topimages.SetError, match="measured for 2x2 maps of 4x4 inputs"):
        topimages.check_fields(image_set, FIELDS, (8, 8))
    with pytest.raises(topimages.SetError, match="no layer g"):
        topimages.check_fields(image_set, {"l": FIELDS["l"]}, (4, 4))
