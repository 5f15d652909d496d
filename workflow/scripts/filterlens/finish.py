"""Finish one model and image once its runs are rendered: per run the lossless video, the
statistics files, MANIFEST.sha256 and provenance.json (one job for all runs of the image, so that
an image costs few jobs however many runs it has); and the HTML page of all runs.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from PIL import Image

from . import frames, paths, stats, topk
from .activations import Activations
from .checkout import REPO
from .describe import weights_text
from .files import atomic_dir, read_tsv, write_text
from .manifest import write_manifest
from .provenance import PROVENANCE, write_provenance
from .page import Page, RunSection, render_page
from .video import encode_avi

log = logging.getLogger("filterlens")

STATS_TABLE = "activation_stats.tsv"
STATS_TEXT = "activation_stats.txt"


@dataclass
class Run:
    name: str
    folder: Path
    settings: Mapping  # the run's rendering keys

    @property
    def video(self) -> Path | None:
        return self.folder / self.settings["video_filename"] if self.settings["save_video"] else None


def runs_of(model: str, image: str, runs: Mapping[str, Mapping]) -> list[Run]:
    """The runs (name -> rendering keys) of a model and image, with their folders."""
    return [Run(name, Path(paths.run_dir(model, image, name)), settings)
            for name, settings in runs.items()]  # fmt: skip


def finish_run(acts: Activations, run: Run, model: str, image: str, config: Mapping) -> None:
    """Video, statistics, manifest and provenance of one rendered run; `config` is the
    configuration provenance.json records."""
    index = frames.read_index(run.folder)
    rows = acts.filter_stats()
    text = stats.write_run_stats(run.folder / STATS_TABLE, run.folder / STATS_TEXT, rows)
    if run.settings["show_raw_stats"]:
        log.info("run %s, raw activation statistics:\n%s", run.name, text)
    if run.video is not None:
        count = encode_avi([run.folder / f.path for f in index], run.video, run.settings["fps"])
        log.info("run %s: %d frames at %s fps -> %s", run.name, count, run.settings["fps"], run.video)
    write_manifest(run.folder, run.video.name if run.video else None)
    info = acts.info
    write_provenance(
        run.folder / PROVENANCE, model=model, image=image, run=run.name, config=config,
        run_settings=run.settings, device=info["device_name"], threads=info["threads"],
        weights=info["weights"], workflow_dir=REPO,
    )  # fmt: skip


def write_page(acts: Activations, runs: list[Run], model: str, image: str, layer_table: Path,
               layer_plot: Path, target: Path) -> None:
    """The page folder: index.html and the pictures it shows (hard links where possible)."""
    with atomic_dir(target) as out:
        place(acts.input_png, out / "input.png")
        place(layer_plot, out / "layer_stats.png")
        place(layer_table, out / "layer_stats.tsv")
        sections = []
        for run in runs:
            place(run.folder / "preview.webp", out / run.name / "preview.webp")
            for layer in acts.names:
                place(run.folder / "sheets" / f"{layer}.png", out / run.name / "sheets" / f"{layer}.png")
            sections.append(RunSection(
                name=run.name, settings=run.settings, preview=f"{run.name}/preview.webp",
                preview_size=Image.open(run.folder / "preview.webp").size,
                frames=len(frames.read_index(run.folder)),
                video=run.video.name if run.video else None,
                sheets=[(layer, f"{run.name}/sheets/{layer}.png") for layer in acts.names],
                top=topk.read_top(run.folder / "top_filters.tsv"),
            ))  # fmt: skip
        page = Page(
            model=model, image=image, weights=weights_text(acts.weights),
            random_weights=acts.weights.get("kind") == "random", extraction=acts.info,
            predictions=acts.predictions(), layers=read_tsv(layer_table),
            input_image="input.png", stats_plot="layer_stats.png", runs=sections,
        )  # fmt: skip
        write_text(out / "index.html", render_page(page))


def place(source: Path, target: Path) -> None:
    """Hard-link `source` into the page folder (a copy where links are not possible)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
