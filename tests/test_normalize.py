"""Normalization scopes, percentile clipping and histogram equalization on hand-computed arrays."""

import numpy as np
import pytest

from filterlens.normalize import (
    HIST_BINS,
    compute_scales,
    equalize,
    from_16bit,
    to_unit,
)
from filterlens.render import quantize

# two layers: "a" has filters with ranges [0, 3] and [-2, 2]; "b" has one filter [10, 13]
MAPS = {
    "a": np.array([[[0, 1], [2, 3]], [[-2, -1], [1, 2]]], dtype=np.float32),
    "b": np.array([[[10, 11], [12, 13]]], dtype=np.float32),
}


def test_filter_mode_uses_each_filters_own_range():
    s = compute_scales(MAPS, "filter")
    assert s.low["a"].tolist() == [0.0, -2.0] and s.high["a"].tolist() == [3.0, 2.0]
    assert s.low["b"].tolist() == [10.0] and s.high["b"].tolist() == [13.0]


def test_layer_mode_shares_the_layer_range():
    s = compute_scales(MAPS, "layer")
    assert s.low["a"].tolist() == [-2.0, -2.0] and s.high["a"].tolist() == [3.0, 3.0]
    assert s.low["b"].tolist() == [10.0] and s.high["b"].tolist() == [13.0]


def test_global_mode_shares_the_range_of_all_selected_layers():
    s = compute_scales(MAPS, "global")
    for layer in MAPS:
        assert set(s.low[layer]) == {-2.0} and set(s.high[layer]) == {13.0}


def test_percentile_clipping_per_filter_matches_numpy_linear_percentiles():
    # filter values 0..99: the 10th and 90th percentiles (linear) are 9.9 and 89.1
    a = np.arange(100, dtype=np.float32).reshape(1, 10, 10)
    s = compute_scales({"x": a}, "filter", clip=(10, 90))
    assert s.low["x"][0] == pytest.approx(9.9) and s.high["x"][0] == pytest.approx(89.1)


def test_percentile_clipping_over_the_layer_scope():
    # percentiles over all values of the layer, not per filter
    s = compute_scales(MAPS, "layer", clip=(25, 75))
    values = np.sort(MAPS["a"].ravel())  # [-2,-1,0,1,1,2,2,3]
    # linear method: position p*(n-1): 0.25*7 = 1.75 -> -1 + 0.75*(0-(-1)) = -0.25; 0.75*7 = 5.25 -> 2
    assert values.tolist() == [-2, -1, 0, 1, 1, 2, 2, 3]
    assert s.low["a"].tolist() == [-0.25, -0.25] and s.high["a"].tolist() == [2.0, 2.0]


def test_to_unit_scales_clips_and_maps_constant_scopes_to_zero():
    a = np.array([[-1.0, 0.0], [1.5, 4.0]], dtype=np.float32)
    assert to_unit(a, 0.0, 2.0).tolist() == [[0.0, 0.0], [0.75, 1.0]]
    flat = np.zeros((3, 3), dtype=np.float32)
    out = to_unit(flat, 0.0, 0.0)
    assert np.isfinite(out).all() and (out == 0).all()


def test_constant_filter_gives_flat_output_without_nan():
    maps = {"z": np.zeros((2, 4, 4), dtype=np.float32)}
    s = compute_scales(maps, "filter", hist_eq=True)
    unit = to_unit(maps["z"][0], s.low["z"][0], s.high["z"][0])
    eq = equalize(unit, s.cdf["z"][0])
    assert np.isfinite(eq).all() and np.ptp(eq) == 0


def test_hist_eq_flattens_a_skewed_histogram():
    # 90% of the values near 0, 10% spread up to 1: equalization spreads the crowded part
    rng = np.random.default_rng(0)
    a = np.concatenate([rng.uniform(0, 0.1, 900), rng.uniform(0.1, 1.0, 100)])
    a = a.astype(np.float32).reshape(1, 10, 100)
    s = compute_scales({"x": a}, "filter", hist_eq=True)
    eq = equalize(to_unit(a[0], s.low["x"][0], s.high["x"][0]), s.cdf["x"][0])
    # after equalization each decile of the output holds about a tenth of the pixels
    counts = np.histogram(eq, 10, (0, 1))[0]
    assert counts.min() > 60 and counts.max() < 140
    assert s.cdf["x"].shape == (1, HIST_BINS) and s.cdf["x"][0, -1] == pytest.approx(1.0)


def test_hist_eq_curve_matches_hand_computed_cdf():
    # values at unit positions 0, 0, 0, 1: 3/4 of the mass in the first bin
    a = np.array([[[0.0, 0.0], [0.0, 1.0]]], dtype=np.float32)
    s = compute_scales({"x": a}, "filter", hist_eq=True)
    cdf = s.cdf["x"][0]
    assert cdf[0] == pytest.approx(0.75) and cdf[-2] == pytest.approx(0.75) and cdf[-1] == 1.0
    out = equalize(np.array([0.0, 1.0], dtype=np.float32), cdf)
    assert out.tolist() == pytest.approx([0.75, 1.0])


def test_layer_and_global_hist_eq_share_one_curve_per_scope():
    s = compute_scales(MAPS, "layer", hist_eq=True)
    assert s.cdf["a"].shape == (1, HIST_BINS)
    g = compute_scales(MAPS, "global", hist_eq=True)
    assert np.array_equal(g.cdf["a"], g.cdf["b"])


def test_16bit_pixels_turn_back_into_activations():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(3, 9, 7)).astype(np.float32)
    s = compute_scales({"x": a}, "filter")
    for f in range(3):
        low, high = s.low["x"][f], s.high["x"][f]
        pixels = quantize(to_unit(a[f], low, high), 65536)
        assert pixels.dtype == np.uint16
        back = from_16bit(pixels, low, high)
        assert np.abs(back - a[f]).max() <= (high - low) / 65535 / 2 + 1e-9


def test_rows_list_every_filter_in_order():
    rows = list(compute_scales(MAPS, "filter").rows())
    assert [(r[0], r[1]) for r in rows] == [("a", 0), ("a", 1), ("b", 0)]
