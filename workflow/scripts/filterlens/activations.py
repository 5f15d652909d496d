"""The activations folder of one model and image: extraction writes it, every later step reads it.

    results/<model>/<image>/activations/
        <layer>.npy         float32 C x H x W: the layer's exact output (one file per call id)
        layers.tsv          layer, module, type, channels, height, width, channels_total (network
                            order; channels: those saved, channels_total: the layer's own)
        filter_stats.tsv    per-filter statistics (filterlens.stats)
        predictions.tsv     rank, class, label, probability (top-5)
        input.png           the image as the model saw it (img_size)
        extraction.json     what made the folder: settings, weights, source image, key, and the
                            size of every file above

The folder appears whole or not at all (written under a hidden name, then renamed). Its record,
extraction.json, lets the workflow tell at start-up whether the folder is still what the current
configuration would make (`state`), without reading the maps.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from . import stats
from .describe import changes
from .files import atomic_dir, read_tsv, write_tsv

RECORD = "extraction.json"
LAYER_COLUMNS = ("layer", "module", "type", "channels", "height", "width", "channels_total")
PREDICTION_COLUMNS = ("rank", "class", "label", "probability")


@dataclass(frozen=True)
class Layer:
    """One line of layers.tsv."""

    name: str  # call id: module name, then _1, _2, ... for later calls of the same module
    module: str
    kind: str  # module class name, e.g. Conv2d
    channels: int  # saved (the first max_filters_per_layer, when capped)
    height: int
    width: int
    channels_total: int


class Activations:
    """Read access to one activations folder; maps are memory-mapped, read only where used."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    @cached_property
    def layers(self) -> list[Layer]:
        return [
            Layer(r["layer"], r["module"], r["type"], int(r["channels"]), int(r["height"]),
                  int(r["width"]), int(r["channels_total"]))
            for r in read_tsv(self.folder / "layers.tsv")
        ]  # fmt: skip

    @property
    def names(self) -> list[str]:
        """Selected layers in network order."""
        return [layer.name for layer in self.layers]

    def map(self, layer: str) -> np.ndarray:
        """One layer's maps, C x H x W float32."""
        return np.load(self.folder / f"{layer}.npy", mmap_mode="r")

    def maps(self) -> dict[str, np.ndarray]:
        return {name: self.map(name) for name in self.names}

    @cached_property
    def info(self) -> dict:
        """extraction.json: weights, settings, device, threads, layers, source image."""
        return json.loads((self.folder / RECORD).read_text())

    @property
    def weights(self) -> dict:
        return self.info["weights"]

    @property
    def img_size(self) -> tuple[int, int]:
        """(width, height) of input.png and of every frame."""
        width, height = self.info["img_size"]
        return int(width), int(height)

    @property
    def input_png(self) -> Path:
        return self.folder / "input.png"

    def predictions(self) -> list[dict[str, str]]:
        return read_tsv(self.folder / "predictions.tsv")

    def filter_stats(self) -> list[stats.FilterStats]:
        return stats.read_filter_stats(self.folder / stats.FILTER_STATS)


def write(
    folder: str | os.PathLike,
    maps: Sequence[tuple[Layer, np.ndarray]],
    predictions: Iterable[Sequence],
    input_image,
    info: Mapping,
) -> None:
    """Write the whole folder atomically: maps, tables, input.png and extraction.json (`info`
    plus the size of every file, so that a later start-up notices a file cut short)."""
    with atomic_dir(folder) as out:
        for layer, array in maps:
            _save_npy(out / f"{layer.name}.npy", np.ascontiguousarray(array, dtype=np.float32))
        write_tsv(out / "layers.tsv", LAYER_COLUMNS, (
            (m.name, m.module, m.kind, m.channels, m.height, m.width, m.channels_total)
            for m, _ in maps
        ))  # fmt: skip
        stats.write_filter_stats(
            out / stats.FILTER_STATS,
            [row for layer, array in maps for row in stats.filter_stats(layer.name, array)],
        )
        write_tsv(out / "predictions.tsv", PREDICTION_COLUMNS, predictions)
        input_image.save(out / "input.png", compress_level=6)
        files = {p.name: p.stat().st_size for p in sorted(out.iterdir())}
        record = {**info, "layers": [m.name for m, _ in maps], "files": files}
        (out / RECORD).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


class _Writes:
    """A file seen by numpy as no file object, so that np.lib.format writes it in chunks through
    write(): numpy's fast path for real files (ndarray.tofile) reports a full disk as "N requested
    and M written" without an errno, which would read as a bug rather than as the storage error it
    is (jobs.clean_message)."""

    def __init__(self, fh):
        self.write = fh.write


def _save_npy(path: Path, array: np.ndarray) -> None:
    """np.save's bytes, through plain writes (_Writes)."""
    with open(path, "wb") as fh:
        np.lib.format.write_array(_Writes(fh), array, allow_pickle=False)


def state(folder: str | os.PathLike, key: str, source: str | os.PathLike,
          settings: Mapping | None = None) -> str | None:
    """Why `folder` must be made again, or None when it is what `key` and `source` describe, whole.

    `key` is the digest of everything that decides the folder's content except the source image
    (the extraction `settings`, code, software); the image `source` is checked by path, size and
    modification time, and by its SHA-256 where only the time differs (a copy, a touch)."""
    folder = Path(folder)
    try:
        record = json.loads((folder / RECORD).read_text())
    except FileNotFoundError:
        return "not made yet"
    except (OSError, ValueError) as err:
        return f"{RECORD} is unreadable ({err})"
    if record.get("key") != key:
        made = record.get("settings")
        changed = settings is not None and isinstance(made, dict) and changes(made, settings)
        if changed:
            return f"made with {changed}"
        return "made with other extraction code or software"
    problem = _source_changed(record.get("source") or {}, str(source))
    if problem:
        return problem
    for name, size in (record.get("files") or {}).items():
        try:
            actual = (folder / name).stat().st_size
        except FileNotFoundError:
            return f"{name} is missing"
        if actual != size:
            return f"{name} is {actual:,} bytes, {size:,} when it was written"
    return None


def source_record(path: str | os.PathLike) -> dict:
    """What extraction records about its source image, to notice a changed image later."""
    from .files import sha256_file  # noqa: PLC0415

    st = os.stat(path)
    return {"path": str(path), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns,
            "sha256": sha256_file(path)}  # fmt: skip


def _source_changed(source: Mapping, path: str) -> str | None:
    if source.get("path") != path:
        return f"it was made from {source.get('path')}, not {path}"
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return f"its source image {path} is gone"
    if st.st_size != source.get("bytes"):
        return f"its source image {path} changed"
    if st.st_mtime_ns != source.get("mtime_ns"):
        from .files import sha256_file  # noqa: PLC0415 - only when the time differs

        if sha256_file(path) != source.get("sha256"):
            return f"its source image {path} changed"
    return None
