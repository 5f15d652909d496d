"""Run images through a model loaded once and save what every selected layer outputs.

A batch job builds the model, then for each image: load it (filterlens.images), bring it to
img_size (filterlens.preprocess), capture the selected layers (filterlens.models), and write the image's activations
folder (filterlens.activations) with its per-layer statistics and their plot, before it reads the
next image; so memory holds one image's maps at a time, however large the batch.

Imports torch (through filterlens.models): only extraction jobs pay for it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import torch

from . import images, models, preprocess, summary, weights
from .activations import Layer, source_record
from .activations import write as write_activations
from .describe import weights_text
from .files import atomic_path, write_tsv

log = logging.getLogger("filterlens")


@dataclass
class Extractor:
    """A model ready to run, with what extraction.json records about it."""

    name: str
    model: torch.nn.Module
    device: torch.device
    transform: preprocess.EvalTransform  # the DEFAULT weights' transform: mean, std, crop
    settings: Mapping  # the extraction settings of the configuration
    record: dict  # what every image's extraction.json records about the model and its weights

    @classmethod
    def load(cls, settings: Mapping, weights_input: str | None, max_bytes: int,
             threads: int) -> "Extractor":
        torch.set_num_threads(threads)
        device = models.pick_device(settings["device"])
        state, info = load_weights(settings, weights_input, max_bytes)
        construction = models.resolve_construction(settings["construction"], settings["weights"])
        net = models.build(settings["model"], state, seed=settings["seed"], construction=construction)
        record = {
            "model": settings["model"], "weights": info, "seed": settings["seed"],
            "construction": net.construction, "device": str(device),
            "device_name": device_name(device), "threads": torch.get_num_threads(),
            "img_size": list(settings["img_size"]), "max_filters_per_layer": settings["max_filters_per_layer"],
        }  # fmt: skip
        transform = preprocess.weights_transform(settings["model"])
        return cls(settings["model"], net.module.to(device), device, transform, settings, record)

    def extract(self, image_name: str, source: str, key: str, max_pixels: int,
                folder: str, table: str, plot: str) -> None:
        """Extract one image and write its activations folder, layer_stats.tsv and .png."""
        s = self.settings
        image, notes = images.load_image(source, max_pixels=max_pixels)
        for note in notes:
            log.info("%s: %s", source, note)
        seen = preprocess.prepare(image, tuple(s["img_size"]), s["preprocess"], self.transform)
        x = models.to_input(images.to_model_array(seen.image), self.device, self.transform.mean,
                            self.transform.std)  # fmt: skip
        result = models.capture(self.model, x, s["layers"], s["max_filters_per_layer"], name=self.name)
        categories = models.default_weights(self.name).meta.get("categories")
        predictions = models.top_predictions(result.logits, categories)
        random = self.record["weights"]["kind"] == "random"
        for rank, _, label, prob in predictions:
            log.info("%s top-%d: %s (%.4f)%s", image_name, rank, label, prob,
                     " [random weights]" * random)  # fmt: skip
        maps = [(Layer(m.name, m.module, m.kind, *m.array.shape, m.channels_total), m.array)
                for m in result.maps]  # fmt: skip
        info = {**self.record, "input_notes": notes, "preprocess": seen.record(), "key": key,
                "settings": dict(s), "source": source_record(source)}  # fmt: skip
        write_activations(folder, maps, predictions, seen.image, info)
        rows = [summary.layer_summary(layer.name, array) for layer, array in maps]
        write_tsv(table, summary.COLUMNS, rows)
        rows = [dict(zip(summary.COLUMNS, row)) for row in rows]
        weights = weights_text(self.record["weights"], short=True)
        started = time.process_time()
        with atomic_path(plot) as tmp:
            summary.plot_layer_stats(rows, f"{self.name} · {image_name} · {weights}", tmp)
        log.info("%s: %d layers, %d filters; %s; plot %.2f s", image_name, len(maps),
                 sum(layer.channels for layer, _ in maps), seen.description,
                 time.process_time() - started)  # fmt: skip


def load_weights(settings: Mapping, weights_input: str | None, max_bytes: int):
    """The state dict to load (None for random init) and the `weights` record to keep."""
    if settings["weights"] == "random":
        log.info("weights: random initialization, seed %d", settings["seed"])
        return None, {"kind": "random", "seed": settings["seed"]}
    if settings["weights"] == "imagenet":
        record = weights.read_record(Path(weights_input))
    else:
        record = weights.local_record(Path(weights_input))
    state = weights.load_state_dict(record.path, record.sha256, max_bytes=max_bytes)
    log.info("weights: %s", record.describe())
    return state, record.extraction_info()


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def receptive_fields(settings: Mapping) -> list:
    """The receptive field of every selected layer of the model at img_size (filterlens.receptive):
    the layers are those a capture of a blank image selects, so no image is needed."""
    from . import receptive  # noqa: PLC0415

    torch.set_num_threads(1)  # the probe's small passes run faster on one thread
    net = models.build(settings["model"], None, seed=settings["seed"])
    width, height = settings["img_size"]
    blank = torch.zeros(1, 3, height, width)
    layers = [m.name for m in models.capture(net.module, blank, settings["layers"], 1,
                                             name=settings["model"]).maps]  # fmt: skip
    return receptive.measure_fields(net.module, (height, width), layers)
