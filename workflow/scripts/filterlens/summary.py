"""Per-layer statistics of the raw activations, and their plot.

One row per layer: its shape, the mean, population std, min and max over all its values, and the
fraction of values <= 0 (a ReLU after the layer would zero them). Accumulated in float64.
"""

from __future__ import annotations

import numpy as np

COLUMNS = ("layer", "filters", "height", "width", "mean", "std", "min", "max", "nonpositive")


def layer_summary(layer: str, a: np.ndarray) -> tuple:
    """The summary row of one layer's maps `a` (C x H x W)."""
    values = np.asarray(a, dtype=np.float64).ravel()
    c, h, w = a.shape
    return (
        layer, c, h, w, float(values.mean()), float(values.std()), float(values.min()),
        float(values.max()), float(np.count_nonzero(values <= 0) / values.size),
    )  # fmt: skip


LABEL_PT = 8.0  # layer names: never smaller, at any depth
ROW_IN = LABEL_PT * 1.5 / 72  # one layer per row, a line and a half of its label apart
PANELS_IN = 1.9  # title, legend and both axes' ticks (top and bottom) around the rows


def plot_layer_stats(rows: list[dict], title: str, target) -> None:
    """Write layer_stats_figure(rows, title) to `target` as a PNG."""
    from matplotlib import pyplot as plt  # noqa: PLC0415 - only the plot job pays for matplotlib

    fig = layer_stats_figure(rows, title)
    fig.savefig(target, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)


def layer_stats_figure(rows: list[dict], title: str):
    """One row per layer, in network order from the top, its full name on the left: mean, mean
    +- std and max of the activations, and the fraction of values <= 0. The figure grows with the
    layers, so that names never shrink or overlap (DenseNet-121's 120 layers stay readable);
    x-axis ticks on both the top and the bottom. `rows`: summary rows as read from layer_stats.tsv."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt  # noqa: PLC0415

    layers = [r["layer"] for r in rows]
    y = np.arange(len(rows))
    col = {k: np.array([float(r[k]) for r in rows]) for k in ("mean", "std", "max", "nonpositive")}
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(10.0, PANELS_IN + ROW_IN * max(len(rows), 4)), sharey=True,
        width_ratios=(3, 1), layout="constrained",
    )  # fmt: skip
    marker = 4 if len(rows) > 40 else 6
    left.fill_betweenx(y, col["mean"] - col["std"], col["mean"] + col["std"], color="C0",
                       alpha=0.2, label="mean ± std")  # fmt: skip
    left.plot(col["mean"], y, "o-", color="C0", markersize=marker, label="mean")
    left.plot(col["std"], y, "s--", color="C2", markersize=marker, label="std")
    left.plot(col["max"], y, "^-", color="C3", markersize=marker, label="max")
    left.axvline(0.0, color="0.5", linewidth=0.8)
    left.set_xlabel("raw activation")
    right.barh(y, col["nonpositive"], height=0.7, color="C7")
    right.set_xlim(0, 1)
    right.set_xlabel("fraction ≤ 0")
    left.set_yticks(y, layers, fontsize=LABEL_PT)
    left.set_ylim(len(rows) - 0.5, -0.5)  # network order, first layer at the top
    for ax in (left, right):
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(axis="x", top=True, labeltop=True, labelsize=LABEL_PT)
        ax.tick_params(axis="y", length=0)
    for row in y[1::2]:  # every other row shaded: the eye finds a layer's values from its name
        for ax in (left, right):
            ax.axhspan(row - 0.5, row + 0.5, color="0.94", zorder=0, linewidth=0)
    fig.suptitle(title, fontsize="medium")
    fig.legend(*left.get_legend_handles_labels(), loc="outside lower center", ncols=4,
               fontsize=LABEL_PT, frameon=False)  # fmt: skip
    return fig
