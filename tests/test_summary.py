"""Per-layer statistics against hand-computed values."""

import math

import numpy as np
import pytest

from filterlens.summary import COLUMNS, layer_summary, plot_layer_stats


def test_layer_summary_hand_computed():
    a = np.array([[[-1.0, 0.0], [1.0, 2.0]], [[0.5, 0.5], [-0.5, 2.5]]], dtype=np.float32)
    row = dict(zip(COLUMNS, layer_summary("conv", a)))
    values = [-1, 0, 1, 2, 0.5, 0.5, -0.5, 2.5]  # mean 5/8
    assert row["layer"] == "conv" and (row["filters"], row["height"], row["width"]) == (2, 2, 2)
    assert row["mean"] == pytest.approx(0.625)
    assert row["std"] == pytest.approx(math.sqrt(sum((v - 0.625) ** 2 for v in values) / 8))
    assert (row["min"], row["max"]) == (-1.0, 2.5)
    assert row["nonpositive"] == 3 / 8  # -1, 0 and -0.5


def test_plot_is_a_png(tmp_path):
    rows = [
        {"layer": f"l{i}", "mean": str(i * 0.1), "std": "0.2", "max": str(i), "nonpositive": "0.5"}
        for i in range(5)
    ]
    target = tmp_path / "plot.tmp"  # atomic writers hand a temporary name without .png
    plot_layer_stats(rows, "model · image · random weights (seed 0)", target)
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
