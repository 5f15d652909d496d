"""Say in words which weights made a picture: every figure, caption and page states it.

`weights_text` reads the `weights` record that extraction writes to extraction.json; captions,
which are written before any job has run, describe the same record made from the configuration.
"""

from __future__ import annotations

import json
from pathlib import PurePath
from typing import Mapping


def weights_record(config: dict) -> dict:
    """The `weights` record extraction will write, as far as the configuration tells it."""
    weights = config["weights"]
    if weights == "random":
        return {"kind": "random", "seed": config["seed"]}
    if weights == "imagenet":
        return {"kind": "imagenet"}
    return {"kind": weights, "file": PurePath(weights).name}


def weights_text(record: dict, short: bool = False) -> str:
    """'random weights (seed 0), untrained', 'ImageNet weights (...)' or 'weights from <file>'."""
    kind = str(record.get("kind", ""))
    if kind == "random":
        text = f"random weights (seed {record.get('seed', 0)})"
        return text if short else text + ": an untrained network, so no learned features"
    if kind.startswith("imagenet"):
        detail = kind.partition(":")[2].strip() or "torchvision DEFAULT"
        return f"ImageNet weights ({detail})"
    name = record.get("file") or PurePath(kind).name
    return f"weights from {name}"


def changes(made: Mapping, now: Mapping) -> str:
    """The keys whose recorded value `made` differs from `now`, in words: "cmap=magma (the
    configuration says viridis)"; empty when none does. Values compare as JSON holds them (a
    tuple equals the list a record read back holds)."""
    made, now = json.loads(json.dumps(made)), json.loads(json.dumps(now))

    def text(value) -> str:
        return json.dumps(value) if not isinstance(value, str) else value

    parts = [
        f"{key}={text(made.get(key))} (the configuration says {text(now.get(key))})"
        for key in sorted(set(made) | set(now))
        if made.get(key) != now.get(key)
    ]
    return "; ".join(parts)
