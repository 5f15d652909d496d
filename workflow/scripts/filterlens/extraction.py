"""Run images through a model loaded once and save what every selected layer outputs.

A batch job builds the model, then for each image: load it (filterlens.images), resize it to
img_size, capture the selected layers (filterlens.models), and write the image's activations
folder (filterlens.activations) with its per-layer statistics and their plot, before it reads the
next image; so memory holds one image's maps at a time, however large the batch.

Imports torch (through filterlens.models): only extraction jobs pay for it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import torch

from . import images, models, summary, weights
from .activations import Layer, source_record
from .activations import write as write_activations
from .describe import weights_text
from .files import atomic_path, sha256_file, write_tsv

log = logging.getLogger("filterlens")


@dataclass
class Extractor:
    """A model ready to run, with what extraction.json records about it."""

    name: str
    model: torch.nn.Module
    device: torch.device
    settings: Mapping  # the extraction settings of the configuration
    weights: dict  # the `weights` record of extraction.json

    @classmethod
    def load(cls, settings: Mapping, weights_input: str | None, threads: int) -> "Extractor":
        torch.set_num_threads(threads)
        device = models.pick_device(settings["device"])
        state, info = load_weights(settings, weights_input)
        model = models.build_model(settings["model"], state, seed=settings["seed"]).to(device)
        return cls(settings["model"], model, device, settings, info)

    def extract(self, image_name: str, source: str, key: str, max_pixels: int,
                folder: str, table: str, plot: str) -> None:
        """Extract one image and write its activations folder, layer_stats.tsv and .png."""
        s = self.settings
        image, notes = images.load_image(source, max_pixels=max_pixels)
        for note in notes:
            log.info("%s: %s", source, note)
        resized = images.resize_for_model(image, tuple(s["img_size"]))
        x = models.to_input(images.to_model_array(resized), self.device)
        try:
            result = models.capture(self.model, x, s["layers"], s["max_filters"])
        except RuntimeError as err:
            first = str(err).splitlines()[0]
            hint = ". Use a larger img_size." if "size" in first.lower() else ""
            raise models.ModelError(
                f"{self.name} failed on an image of img_size {s['img_size']}: {first}{hint}"
            ) from None
        categories = models.default_weights(self.name).meta.get("categories")
        predictions = models.top_predictions(result.logits, categories)
        random = self.weights["kind"] == "random"
        for rank, _, label, prob in predictions:
            log.info("%s top-%d: %s (%.4f)%s", image_name, rank, label, prob,
                     " [random weights]" * random)  # fmt: skip
        maps = [(Layer(m.name, m.module, m.kind, *m.array.shape), m.array) for m in result.maps]
        info = {
            "model": self.name, "weights": self.weights, "seed": s["seed"],
            "device": str(self.device), "device_name": device_name(self.device),
            "threads": torch.get_num_threads(), "img_size": list(s["img_size"]),
            "max_filters_per_layer": s["max_filters"], "input_notes": notes,
            "key": key, "source": source_record(source),
        }  # fmt: skip
        write_activations(folder, maps, predictions, resized, info)
        rows = [summary.layer_summary(layer.name, array) for layer, array in maps]
        write_tsv(table, summary.COLUMNS, rows)
        rows = [dict(zip(summary.COLUMNS, row)) for row in rows]
        title = f"{self.name} · {image_name} · {weights_text(self.weights, short=True)}"
        with atomic_path(plot) as tmp:
            summary.plot_layer_stats(rows, title, tmp)
        log.info("%s: %d layers, %d filters", image_name, len(maps),
                 sum(layer.channels for layer, _ in maps))  # fmt: skip


def load_weights(settings: Mapping, weights_input: str | None) -> tuple[dict | None, dict]:
    """The state dict to load (None for random init) and the `weights` record to keep."""
    kind = settings["weights"]
    if kind == "random":
        log.info("weights: random initialization, seed %d", settings["seed"])
        return None, {"kind": "random", "seed": settings["seed"]}
    if kind == "imagenet":
        digest, path = weights.read_record(Path(weights_input))
        kind = f"imagenet: {models.default_weights(settings['model'])}"
    else:
        path, digest = Path(weights_input), None
    state = weights.load_state_dict(path, expected_sha256=digest)
    digest = digest or sha256_file(path)
    log.info("weights: %s (%s, sha256 %s)", kind, path.name, digest)
    return state, {"kind": kind, "file": path.name, "sha256": digest}


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
