"""Top-k filters by mean and by max activation, against hand-computed rankings."""

import numpy as np

from filterlens.stats import FilterStats
from filterlens.topk import marks, read_top, top_filters, top_indices, write_top


def test_largest_first():
    assert top_indices([0.5, 2.0, -1.0, 1.0], 2).tolist() == [1, 3]


def test_ties_go_to_the_lower_filter_index():
    assert top_indices([1.0, 3.0, 3.0, 2.0], 3).tolist() == [1, 2, 3]
    # positions 0 and 1 tie; their filter numbers are 7 and 3, so position 1 wins
    assert top_indices([5.0, 5.0], 1, order=[7, 3]).tolist() == [1]


def test_nan_ranks_last_and_k_may_exceed_the_count():
    assert top_indices([np.nan, 1.0, -np.inf], 5).tolist() == [1, 2, 0]
    assert top_indices([1.0, 2.0], 0).tolist() == []


# The per-filter statistics of two layers.
MEANS = {"a": [0.1, 0.5, -0.2, 0.5, 0.3], "b": [-1.0, -3.0, -2.0]}
MAXES = {"a": [1.0, 0.6, 2.0, 0.9, 0.7], "b": [0.0, 0.0, 0.0]}
ROWS = [
    FilterStats(layer, f, -9.0, MAXES[layer][f], MEANS[layer][f], 1.0, 0, 0)
    for layer in ("a", "b") for f in range(len(MEANS[layer]))
]  # fmt: skip


def test_top_filters_hand_computed():
    assert top_filters(ROWS, 2) == [
        # layer a by mean: 0.5 (filter 1) and 0.5 (filter 3) tie -> 1 before 3
        ("a", "mean", 1, 1, 0.5, 0.6),
        ("a", "mean", 2, 3, 0.5, 0.9),
        # layer a by max: 2.0 (filter 2), then 1.0 (filter 0)
        ("a", "max", 1, 2, -0.2, 2.0),
        ("a", "max", 2, 0, 0.1, 1.0),
        # layer b by mean: -1 (filter 0), -2 (filter 2)
        ("b", "mean", 1, 0, -1.0, 0.0),
        ("b", "mean", 2, 2, -2.0, 0.0),
        # layer b by max: all tie at 0 -> filters 0, 1
        ("b", "max", 1, 0, -1.0, 0.0),
        ("b", "max", 2, 1, -3.0, 0.0),
    ]


def test_rows_in_any_order_rank_the_same():
    assert top_filters(reversed(ROWS), 2) == [
        row for layer in ("b", "a") for row in top_filters(ROWS, 2) if row[0] == layer
    ]


def test_k_larger_than_a_layer_lists_every_filter_once_per_measure():
    table = top_filters(ROWS, 10)
    assert len(table) == 2 * (5 + 3)
    assert [r[3] for r in table if r[:2] == ("a", "mean")] == [1, 3, 4, 0, 2]


def test_marks_and_the_table_read_back(tmp_path):
    table = top_filters(ROWS, 2)
    write_top(tmp_path / "top.tsv", table)
    read = read_top(tmp_path / "top.tsv")
    assert [(r["layer"], r["by"], int(r["rank"]), int(r["filter"])) for r in read] == [
        row[:4] for row in table
    ]
    assert marks(table) == {
        "a": {"mean": {1, 3}, "max": {2, 0}},
        "b": {"mean": {0, 2}, "max": {0, 1}},
    }
