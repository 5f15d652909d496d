"""Read what extract_activations saved: the layer table (network order) and the maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .files import read_tsv


LAYER_COLUMNS = ("layer", "module", "type", "channels", "height", "width")


def layer_table(folder: str | Path) -> list[dict]:
    """Rows of layers.tsv in network order, with channels, height and width as ints."""
    rows = read_tsv(Path(folder) / "layers.tsv")
    return [{**row, **{k: int(row[k]) for k in ("channels", "height", "width")}} for row in rows]


def layer_names(folder: str | Path) -> list[str]:
    """Selected layers in network order."""
    return [row["layer"] for row in read_tsv(Path(folder) / "layers.tsv")]


def load_map(folder: str | Path, layer: str) -> np.ndarray:
    """One layer's maps, C x H x W float32 (memory-mapped: only what is used is read)."""
    return np.load(Path(folder) / f"{layer}.npy", mmap_mode="r")


def load_maps(folder: str | Path) -> dict[str, np.ndarray]:
    return {layer: load_map(folder, layer) for layer in layer_names(folder)}
