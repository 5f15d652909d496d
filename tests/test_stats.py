"""Per-filter statistics against hand-computed maps: values, where the maximum is, and the
columnar view (Peaks) a set is ranked by."""

import numpy as np
import pytest

from filterlens import stats

# two filters of a 2 x 3 map
MAP = np.array(
    [
        [[1.0, 5.0, 2.0], [5.0, 0.0, -1.0]],  # max 5 twice: the first in row-major order, (0, 1)
        [[-3.0, -2.0, -4.0], [-1.5, -2.5, -1.5]],  # all negative: max -1.5 at (1, 0) and (1, 2)
    ],
    dtype=np.float32,
)


def test_hand_computed_values_and_first_positions():
    rows = stats.filter_stats("l", MAP)
    assert [(r.min, r.max, r.mean) for r in rows] == [(-1.0, 5.0, 2.0), (-4.0, -1.5, -14.5 / 6)]
    assert rows[0].std == pytest.approx(np.std([1, 5, 2, 5, 0, -1]))
    assert [(r.max_y, r.max_x) for r in rows] == [(0, 1), (1, 0)]


def test_means_are_float64():
    rng = np.random.default_rng(3)
    a = (rng.standard_normal((16, 37, 41)) * 1e3 + 1e4).astype(np.float32)
    means = [r.mean for r in stats.filter_stats("l", a)]
    assert means == a.reshape(16, -1).astype(np.float64).mean(1).tolist()
    assert any(m != float(np.float32(m)) for m in means)  # float32 accumulation would differ


def test_peaks_are_the_columns_of_the_table_read_back(tmp_path):
    other = np.random.default_rng(0).standard_normal((3, 4, 5)).astype(np.float32)
    path = tmp_path / stats.FILTER_STATS
    stats.write_filter_stats(path, stats.filter_stats("conv1", MAP) + stats.filter_stats("b", other))
    table = stats.peaks(stats.read_filter_stats(path))
    assert list(table) == ["conv1", "b"]
    assert table["conv1"].mean.tolist() == [2.0, -14.5 / 6] and table["conv1"].y.tolist() == [0, 1]
    flat = other.reshape(3, -1)
    assert table["b"].max.tolist() == flat.max(1).astype(np.float64).tolist()
    assert (table["b"].y * 5 + table["b"].x).tolist() == flat.argmax(1).tolist()


def test_nan_is_refused_naming_the_layer():
    a = np.zeros((1, 2, 2), np.float32)
    a[0, 1, 0] = np.nan
    with pytest.raises(stats.StatisticsError, match="layer l: the activations hold NaN"):
        stats.filter_stats("l", a)
