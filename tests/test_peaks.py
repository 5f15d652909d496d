"""Per-image filter peaks (mean, max, where the max is) against hand-computed maps, and their
table round trip."""

import numpy as np
import pytest

from filterlens import peaks, stats

# two filters of a 2 x 3 map
MAP = np.array(
    [
        [[1.0, 5.0, 2.0], [5.0, 0.0, -1.0]],  # max 5 twice: the first in row-major order, (0, 1)
        [[-3.0, -2.0, -4.0], [-1.5, -2.5, -1.5]],  # all negative: max -1.5 at (1, 0) and (1, 2)
    ],
    dtype=np.float32,
)


def test_hand_computed_means_maxima_and_first_positions():
    p = peaks.filter_peaks(MAP)
    assert p.mean.tolist() == [2.0, -14.5 / 6]
    assert p.max.tolist() == [5.0, -1.5]
    assert (p.y.tolist(), p.x.tolist()) == ([0, 1], [1, 0])
    assert p.mean.dtype == np.float64


def test_means_equal_the_statistics_table_bit_for_bit():
    rng = np.random.default_rng(3)
    a = (rng.standard_normal((16, 37, 41)) * 1e3 + 1e4).astype(np.float32)
    means = [row[4] for row in stats.filter_stats("l", a)]
    assert peaks.filter_peaks(a).mean.tolist() == means
    # float32 accumulation would differ: the float64 mean is what both tables hold
    assert any(float(m) != float(np.float32(m)) for m in means)


def test_nan_is_the_maximum_at_its_first_position():
    a = np.zeros((1, 2, 2), np.float32)
    a[0, 1, 0] = np.nan
    p = peaks.filter_peaks(a)
    assert np.isnan(p.max[0]) and (p.y[0], p.x[0]) == (1, 0)


def test_table_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(0)
    other = rng.standard_normal((3, 4, 5)).astype(np.float32)
    path = tmp_path / peaks.FILENAME
    peaks.write_table(path, [("conv1", MAP), ("layer1.0.relu_1", other)])
    table = peaks.read_table(path)
    assert list(table) == ["conv1", "layer1.0.relu_1"]
    for layer, a in (("conv1", MAP), ("layer1.0.relu_1", other)):
        expected, got = peaks.filter_peaks(a), table[layer]
        for name in ("mean", "max", "y", "x"):
            assert np.array_equal(getattr(got, name), getattr(expected, name)), (layer, name)
    assert path.read_text().splitlines()[0].split("\t") == list(peaks.COLUMNS)


def test_missing_table_names_the_file(tmp_path):
    with pytest.raises(peaks.PeaksError, match="peaks.tsv is missing"):
        peaks.read_table(tmp_path / peaks.FILENAME)


def test_a_map_that_is_not_c_h_w_is_refused():
    with pytest.raises(ValueError, match="C x H x W"):
        peaks.filter_peaks(np.zeros((2, 3), np.float32))
