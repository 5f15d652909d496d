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


def plot_layer_stats(rows: list[dict], title: str, target) -> None:
    """Two panels over the layers in network order: mean, mean +- std and max of the activations;
    the fraction of values <= 0. `rows` are summary rows as read from layer_stats.tsv."""
    import matplotlib  # noqa: PLC0415 - only the plot job pays for matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt  # noqa: PLC0415

    layers = [r["layer"] for r in rows]
    x = np.arange(len(rows))
    col = {k: np.array([float(r[k]) for r in rows]) for k in ("mean", "std", "max", "nonpositive")}
    width = min(16.0, max(6.0, 0.45 * len(rows) + 2.5))
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(width, 6.4), sharex=True, height_ratios=(3, 2), layout="constrained"
    )
    top.fill_between(x, col["mean"] - col["std"], col["mean"] + col["std"], color="C0", alpha=0.2,
                     label="mean ± std")  # fmt: skip
    top.plot(x, col["mean"], "o-", color="C0", label="mean")
    top.plot(x, col["std"], "s--", color="C2", label="std")
    top.plot(x, col["max"], "^-", color="C3", label="max")
    top.axhline(0.0, color="0.5", linewidth=0.8)
    top.set_ylabel("raw activation")
    top.legend(loc="upper left", fontsize="small", ncols=4)
    top.grid(alpha=0.3)
    top.set_title(title, fontsize="medium")
    bottom.bar(x, col["nonpositive"], color="C7")
    bottom.set_ylim(0, 1)
    bottom.set_ylabel("fraction ≤ 0")
    bottom.grid(axis="y", alpha=0.3)
    bottom.set_xticks(x, layers, rotation=60, ha="right", fontsize="small")
    fig.savefig(target, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
