"""Where the workflow puts things: the one path scheme of results/, used by the rules (as patterns
with {wildcards}) and by the scripts (with values). What lies inside a folder is said by the
module that writes it (activations, frames, normalize, stats, provenance)."""

from __future__ import annotations

ACTIVATIONS = "results/{model}/{image}/activations"
IMAGE_DIR = "results/{model}/{image}"
RUN_DIR = "results/{model}/{image}/{run}"
PAGE_DIR = "results/report/{model}/{image}"
COMPARE_DIR = "results/compare/{name}"
LAYER_TABLE = "results/{model}/{image}/layer_stats.tsv"
LAYER_PLOT = "results/{model}/{image}/layer_stats.png"
WEIGHTS_RECORD = "resources/weights/{model}.imagenet.sha256"
PALETTE = "resources/palettes/{cmap}.npy"


def activations(model: str, image: str) -> str:
    return ACTIVATIONS.format(model=model, image=image)


def run_dir(model: str, image: str, run: str) -> str:
    return RUN_DIR.format(model=model, image=image, run=run)
