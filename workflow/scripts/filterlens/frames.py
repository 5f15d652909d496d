"""A run's frames: their names, their index frames.tsv, and rendering them all in one job.

    <run>/frames/<layer>/<filter:04d>.png     (<filter:04d>_16bit.png with save_16bit)
    <run>/frames.tsv    frame, layer, filter, path, bytes: video order (layers in network order,
                        filters by index); path relative to the run folder

frames.tsv is what the video, the manifest, the report and other tools read; its `bytes` column
lets a later start-up notice a frame deleted or cut short.

Rendering runs the filters of a layer on a pool of threads (zlib and Pillow's PNG encoder release
the GIL), and hands each frame, while it is in memory, to a callback (contact sheets are made from
the frames this way, without reading them back).
"""

from __future__ import annotations

import csv
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator, Mapping

import numpy as np
from PIL import Image

from . import png, render, sheets
from .files import put_bytes, read_tsv, write_tsv
from .normalize import Scales, equalize, to_unit

INDEX = "frames.tsv"
COLUMNS = ("frame", "layer", "filter", "path", "bytes")
RECORD = ".render.json"  # in frames/: the settings the frames (and sheets) were rendered with


@dataclass(frozen=True)
class Frame:
    """One line of frames.tsv."""

    frame: int
    layer: str
    filter: int
    path: str  # relative to the run folder
    bytes: int


@dataclass(frozen=True)
class Style:
    """How maps become pixels: the rendering settings of a run."""

    resample: str = "nearest"
    save_16bit: bool = False
    overlay: bool = False
    alpha: float = 0.5
    legend: bool = False

    @classmethod
    def of(cls, settings: Mapping) -> "Style":
        """From a run's settings (the config keys)."""
        return cls(settings["resample"], settings["save_16bit"], settings["overlay_on_image"],
                   float(settings["overlay_alpha"]), settings["show_legend"])  # fmt: skip

    @property
    def suffix(self) -> str:
        return "_16bit.png" if self.save_16bit else ".png"


def frame_name(f: int, style: Style) -> str:
    return f"{f:04d}{style.suffix}"


def frame_path(layer: str, f: int, style: Style) -> str:
    """Where frame `f` of `layer` lives, relative to the run folder."""
    return f"frames/{layer}/{frame_name(f, style)}"


def write_index(run_dir: str | os.PathLike, frames: list[Frame]) -> None:
    write_tsv(Path(run_dir) / INDEX, COLUMNS, (
        (fr.frame, fr.layer, fr.filter, fr.path, fr.bytes) for fr in frames
    ))  # fmt: skip


class FramesError(ValueError):
    """frames.tsv is missing or damaged (a published run may have been altered)."""


def read_index(run_dir: str | os.PathLike) -> list[Frame]:
    """The frames of the run in `run_dir`, checked: every path stays inside the run folder."""
    path = Path(run_dir) / INDEX
    if not path.is_file():
        raise FramesError(f"{path} is missing: it lists the run's frames; publish it with the run")
    try:
        frames = [
            Frame(int(r["frame"]), r["layer"], int(r["filter"]), r["path"], int(r["bytes"]))
            for r in read_tsv(path)
        ]
    except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError, csv.Error) as err:
        raise FramesError(f"{path} is not a readable frames table ({err}); it is damaged") from None
    for frame in frames:
        rel = PurePosixPath(frame.path)
        if rel.is_absolute() or ".." in rel.parts or not frame.path:
            raise FramesError(f"{path} lists '{frame.path}', outside the run folder; it is damaged")
    return frames


def write_record(frames_dir: str | os.PathLike, record: dict) -> None:
    """What made the frames (the render step's settings), inside the folder that becomes frames/."""
    (Path(frames_dir) / RECORD).write_text(json.dumps(record, sort_keys=True) + "\n")


def read_record(run_dir: str | os.PathLike) -> dict | None:
    """The record of the run's frames, or None where there is none (or it is unreadable)."""
    try:
        return json.loads((Path(run_dir) / "frames" / RECORD).read_text())
    except (OSError, ValueError):
        return None


def damaged(run_dir: str | os.PathLike) -> str | None:
    """The first frame listed in frames.tsv that is missing or not its listed size, or None."""
    run_dir = Path(run_dir)
    for frame in read_index(run_dir):
        try:
            size = os.stat(run_dir / frame.path).st_size
        except FileNotFoundError:
            return f"{frame.path} is missing"
        if size != frame.bytes:
            return f"{frame.path} is {size:,} bytes, {frame.bytes:,} when it was written"
    return None


def frame_image(
    unit: np.ndarray, size: tuple[int, int], style: Style, lut: np.ndarray, background, label: str
) -> tuple[bytes, np.ndarray, np.ndarray | None]:
    """One frame from a unit-scaled map: its PNG file's bytes, and what its sheet tile is made
    of: the frame's pixels (color levels, or RGB) and the colors of those levels (None for RGB)."""
    levels = render.levels_at_size(unit, size, style.resample, 65536 if style.save_16bit else 256)
    if style.save_16bit:
        return png.gray16_png(levels), (levels >> 8).astype(np.uint8), sheets.GRAY
    if style.overlay or style.legend:
        legend = label if style.legend else None
        bg = background if style.overlay else None
        rgb = np.asarray(render.rgb_frame(levels, lut, bg, style.alpha, legend))
        return png.rgb_png(rgb), rgb, None
    return png.palette_png(levels, lut), levels, lut


def render_layer(
    maps: np.ndarray,
    layer: str,
    scales: Scales,
    frames_dir: Path,
    size: tuple[int, int],
    style: Style,
    lut: np.ndarray,
    background: Image.Image | None,
    pool: ThreadPoolExecutor,
    each: Callable[[int, np.ndarray, np.ndarray | None], object] | None = None,
) -> Iterator[tuple[int, str, int, object]]:
    """Render every filter of one layer into `frames_dir` (the run's frames/ folder, or the
    hidden folder that becomes it); yields (filter, path relative to the run, bytes, each(...))
    in filter order. `each(f, pixels, lut)` runs in the worker thread on the frame just made
    (as frame_image gives it)."""
    unit = to_unit(maps, scales.low[layer], scales.high[layer])  # C x H x W, whole layer at once
    (frames_dir / layer).mkdir(parents=True, exist_ok=True)

    def one(f: int):
        u = unit[f]
        curve = scales.curve(layer, f)
        if curve is not None:
            u = equalize(u, curve)
        data, pixels, colors = frame_image(u, size, style, lut, background, f"{layer} #{f}")
        put_bytes(frames_dir / layer / frame_name(f, style), data)
        return f, frame_path(layer, f, style), len(data), each(f, pixels, colors) if each else None

    yield from pool.map(one, range(maps.shape[0]))
