"""Per-layer statistics against hand-computed values."""

import math

import numpy as np
import pytest

from filterlens.summary import COLUMNS, layer_stats_figure, layer_summary, plot_layer_stats


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


def densenet_names() -> list[str]:
    """DenseNet-121's 120 convolutions in network order, and one more layer: 121 rows."""
    names = ["features.conv0"]
    for block, count in enumerate((6, 12, 24, 16), start=1):
        names += [f"features.denseblock{block}.denselayer{i}.conv{k}" for i in range(1, count + 1)
                  for k in (1, 2)]  # fmt: skip
        if block < 4:
            names.append(f"features.transition{block}.conv")
    return names + ["features.norm5"]


def synthetic_rows(names: list[str]) -> list[dict]:
    rng = np.random.default_rng(0)
    return [
        {"layer": name, "mean": str(rng.normal(0, 0.2)), "std": str(rng.uniform(0.3, 1.5)),
         "max": str(rng.uniform(2, 9)), "nonpositive": str(rng.uniform(0.3, 0.7))}
        for name in names
    ]  # fmt: skip


def drawn_texts(fig) -> list:
    """Every text the figure draws: tick labels in view (bottom and top), axis labels, title and
    legend entries."""
    fig.canvas.draw()
    texts = []
    for ax in fig.axes:
        for axis, (low, high) in ((ax.xaxis, sorted(ax.get_xlim())), (ax.yaxis, sorted(ax.get_ylim()))):
            for tick in axis.get_major_ticks():
                if low <= tick.get_loc() <= high:
                    texts += [t for t in (tick.label1, tick.label2) if t.get_visible() and t.get_text()]
            texts.append(axis.label)
        texts.append(ax.title)
    texts += [fig._suptitle] + [t for legend in fig.legends + [ax.get_legend() for ax in fig.axes]
                                if legend is not None for t in legend.get_texts()]  # fmt: skip
    return [t for t in texts if t is not None and t.get_visible() and t.get_text()]


@pytest.mark.parametrize("names", [densenet_names(), [f"layer{i // 4 + 1}.{i % 4}.conv" for i in range(20)]],
                         ids=["densenet121", "resnet18-like"])  # fmt: skip
def test_every_layer_label_is_readable_at_any_depth(names):
    from matplotlib import pyplot as plt

    fig = layer_stats_figure(synthetic_rows(names), "densenet121 · chelsea · random weights (seed 0)")
    texts = drawn_texts(fig)
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in texts]
    y_labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert y_labels == names  # every layer, by its full name, in network order
    assert min(t.get_fontsize() for t in texts) >= 7.0
    width, height = fig.canvas.get_width_height()
    for text, box in zip(texts, boxes):
        assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= width and box.y1 <= height, text.get_text()
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            a, b = boxes[i], boxes[j]
            overlap = min(a.x1, b.x1) - max(a.x0, b.x0) > 0 and min(a.y1, b.y1) - max(a.y0, b.y0) > 0
            assert not overlap, f"{texts[i].get_text()!r} overlaps {texts[j].get_text()!r}"
    plt.close(fig)
