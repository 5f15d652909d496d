"""Render one run of one model and image in one job: every frame and frames.tsv, one contact sheet
per layer with the top filters marked, top_filters.tsv, and the browser preview.

Frames of a layer are rendered on a pool of threads; each frame becomes its sheet tile while it
is in memory, and a layer's sheet is drawn and encoded on the pool while the next layer renders,
so the sheets and the preview cost no reading back of frames. The processor time each part took
(summed over the threads) is returned for the log and the benchmark.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from . import frames, preview, sheets, topk
from .activations import Activations
from .files import atomic_dir, put_bytes, write_bytes
from .frames import Frame, Style
from .normalize import Scales


@dataclass
class Outputs:
    """Where a run's rendering goes (the rule's outputs)."""

    frames: Path
    index: Path
    sheets: Path
    top: Path
    preview: Path


@dataclass
class Summary:
    frames: int = 0
    layers: int = 0
    seconds: dict[str, float] = field(default_factory=lambda: {"frames": 0.0, "sheets": 0.0})


def style_text(settings, style: Style) -> str:
    """How a run's frames are colored, in words (sheet notes)."""
    if style.save_16bit:
        return "16-bit grayscale frames"
    text = f"cmap {settings['cmap']}"
    if style.overlay:
        text += f", blended over the input (alpha {style.alpha:g})"
    return text


def render_run(
    acts: Activations,
    scales: Scales,
    settings: dict,
    lut: np.ndarray,
    top_k: int,
    out: Outputs,
    run: str,
    title: str,
    weights: str,
    threads: int,
) -> Summary:
    """Write all of a run's rendering; `settings` are the run's rendering keys, `title` heads
    every sheet ('<model> · <image>'), `weights` says in words which weights made the maps."""
    style = Style.of(settings)
    size = acts.img_size
    top = topk.top_filters(acts.filter_stats(), top_k)
    marks = topk.marks(top)
    sheet_lut = sheets.GRAY if style.save_16bit else lut
    background = Image.open(acts.input_png).convert("RGB") if style.overlay else None
    summary = Summary()
    index: list[Frame] = []
    drawn = []
    clock = _Clock()
    started = time.process_time()
    # The pool stops (its queued work cancelled) before the hidden folders are removed on failure.
    with atomic_dir(out.frames) as frames_dir, atomic_dir(out.sheets) as sheets_dir, \
            _pool(threads) as pool:  # fmt: skip
        for layer in acts.layers:
            block = size[0] // layer.width if size[0] % layer.width == 0 else None
            grid = sheets.make_grid(layer.channels, size, block=block)
            rendered = list(frames.render_layer(
                acts.map(layer.name), layer.name, scales, frames_dir, size, style, lut, background,
                pool, each=lambda f, pixels, colors: (pixels, colors),
            ))  # fmt: skip
            for f, path, nbytes, _ in rendered:
                index.append(Frame(len(index), layer.name, f, path, nbytes))
            stack = np.stack([pixels for *_, (pixels, _) in rendered])
            tiles = clock(sheets.tiles_of)(stack, grid.tile, rendered[0][3][1])
            del stack
            scale = sheets.scale_for(
                scales.mode, layer.name, scales.low[layer.name].tolist(),
                scales.high[layer.name].tolist(), sheet_lut, scales.clip,
                scales.cdf.get(layer.name),
            )  # fmt: skip
            lines = sheets.layer_lines(layer, size, grid, weights, run, scales.mode,
                                       style_text(settings, style))  # fmt: skip
            drawn.append(pool.submit(
                clock(_sheet), sheets_dir / f"{layer.name}.png", tiles,
                [f for f, *_ in rendered], grid, f"{title} · {layer.name}", lines, scale,
                marks.get(layer.name, {}), top_k, layer.name,
            ))  # fmt: skip
            summary.frames += len(rendered)
            summary.layers += 1
        stills = [job.result() for job in drawn]
        frames.write_record(frames_dir, record(settings, top_k))
    summary.seconds["sheets"] = clock.seconds
    summary.seconds["frames"] = time.process_time() - started - clock.seconds
    frames.write_index(out.index.parent, index)
    topk.write_top(out.top, top)
    started = time.process_time()
    write_bytes(out.preview, preview.preview_webp(stills))
    summary.seconds["preview"] = time.process_time() - started
    return summary


def record(settings: dict, top_k: int) -> dict:
    """What the frames and sheets were made with: the rendering keys and top_k."""
    return {"settings": dict(settings), "top_k": top_k}


def _sheet(target: Path, tiles, filters, grid, title, lines, scale, top, top_k, layer):
    """Draw and save one sheet; returns its preview frame."""
    sheet = sheets.layer_sheet(tiles, filters, grid, title, lines, scale, top, top_k)
    put_bytes(target, sheets.sheet_png(sheet.image))
    return preview.sheet_frame(sheet.image, layer)


@contextmanager
def _pool(threads: int):
    """A thread pool that, on leaving, cancels what has not started and waits for the rest."""
    pool = ThreadPoolExecutor(max(1, threads))
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class _Clock:
    """Wraps functions run on many threads and sums the processor time of the threads in them."""

    def __init__(self):
        self.seconds = 0.0
        self._lock = threading.Lock()

    def __call__(self, fn):
        def timed(*args):
            started = time.thread_time()
            try:
                return fn(*args)
            finally:
                spent = time.thread_time() - started
                with self._lock:
                    self.seconds += spent

        return timed
