"""Write the HTML page of one model and image (rule write_page): the input and its predictions,
per-layer statistics and, per run, the preview, the top filters and the contact sheets."""

import json
import logging
import os
import shutil
from pathlib import Path

from PIL import Image

from filterlens.activations import layer_names
from filterlens.describe import weights_text
from filterlens.files import atomic_dir, read_tsv, write_text
from filterlens.jobs import run_job
from filterlens.page import Page, RunSection, render_page

log = logging.getLogger("filterlens")


def main(smk):
    maps = Path(smk.input.maps)
    info = json.loads((maps / "extraction.json").read_text())
    layers = layer_names(maps)
    with atomic_dir(smk.output.page) as out:
        place(maps / "input.png", out / "input.png")
        place(Path(smk.input.plot), out / "layer_stats.png")
        runs = []
        for name, sheets, top, preview, frames in zip(
            smk.params.runs, smk.input.sheets, smk.input.top, smk.input.preview, smk.input.index
        ):
            settings = smk.params.settings[name]
            place(Path(preview), out / name / "preview.webp")
            for layer in layers:
                place(Path(sheets) / f"{layer}.png", out / name / "sheets" / f"{layer}.png")
            runs.append(RunSection(
                name=name, settings=settings, preview=f"{name}/preview.webp",
                preview_size=Image.open(preview).size,
                frames=len(read_tsv(frames)),
                video=settings["video_filename"] if settings["save_video"] else None,
                sheets=[(layer, f"{name}/sheets/{layer}.png") for layer in layers],
                top=read_tsv(top),
            ))  # fmt: skip
        page = Page(
            model=smk.wildcards.model,
            image=smk.wildcards.image,
            weights=weights_text(info["weights"]),
            random_weights=info["weights"].get("kind") == "random",
            extraction=info,
            predictions=read_tsv(maps / "predictions.tsv"),
            layers=read_tsv(smk.input.stats),
            input_image="input.png",
            stats_plot="layer_stats.png",
            runs=runs,
        )
        write_text(out / "index.html", render_page(page))
    log.info("page with %d runs, %d layers", len(runs), len(layers))


def place(source: Path, target: Path) -> None:
    """Hard-link `source` into the page folder (a copy where links are not possible)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


run_job(main, snakemake)  # noqa: F821 - injected by Snakemake
