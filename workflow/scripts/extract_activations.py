"""One forward pass: save each selected layer's feature maps as float32 .npy (rule
extract_activations), with the layer table, the top-5 predictions and the input the model saw."""

import json
import logging
from pathlib import Path

import numpy as np

from filterlens import images
from filterlens.files import atomic_dir, sha256_file, write_tsv
from filterlens.jobs import run_job

log = logging.getLogger("filterlens")
LAYER_COLUMNS = ("layer", "module", "type", "channels", "height", "width")


def main(smk):
    p = smk.params
    # The image is checked before any model work: a bad file fails in a second, not after torch.
    image, notes = images.load_image(smk.input.image, max_pixels=p.max_image_pixels)
    for note in notes:
        log.info("%s: %s", smk.input.image, note)
    resized = images.resize_for_model(image, tuple(p.img_size))

    import torch  # noqa: PLC0415 - only this job pays for torch

    from filterlens import models, weights  # noqa: PLC0415

    torch.set_num_threads(smk.threads)
    device = models.pick_device(p.device)
    state, weights_info = load_weights(smk, weights, models)
    model = models.build_model(smk.wildcards.model, state, seed=p.seed).to(device)
    x = models.to_input(images.to_model_array(resized), device)
    try:
        result = models.capture(model, x, p.layers, p.max_filters)
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        hint = ". Use a larger img_size." if "size" in first.lower() else ""
        raise models.ModelError(
            f"{smk.wildcards.model} failed on an image of img_size {p.img_size}: {first}{hint}"
        ) from None
    categories = models.default_weights(smk.wildcards.model).meta.get("categories")
    predictions = models.top_predictions(result.logits, categories)
    for rank, _, label, prob in predictions:
        log.info("top-%d: %s (%.4f)%s", rank, label, prob, " [random weights]" * (p.weights == "random"))

    with atomic_dir(smk.output.maps) as out:
        for layer in result.maps:
            np.save(out / f"{layer.name}.npy", layer.array)
        write_tsv(out / "layers.tsv", LAYER_COLUMNS, (
            (m.name, m.module, m.kind, *m.array.shape) for m in result.maps
        ))  # fmt: skip
        write_tsv(out / "predictions.tsv", ("rank", "class", "label", "probability"), predictions)
        resized.save(out / "input.png", compress_level=6)
        info = {
            "model": smk.wildcards.model, "weights": weights_info, "seed": p.seed,
            "device": str(device), "device_name": device_name(device, torch),
            "threads": torch.get_num_threads(), "img_size": list(p.img_size),
            "layers": [m.name for m in result.maps], "input_notes": notes,
        }  # fmt: skip
        (out / "extraction.json").write_text(json.dumps(info, indent=2) + "\n")
    log.info("saved %d layers, %d filters", len(result.maps), sum(m.array.shape[0] for m in result.maps))


def load_weights(smk, weights, models):
    """The state dict to load (None for random init) and what to record about it."""
    kind = smk.params.weights
    if kind == "random":
        log.info("weights: random initialization, seed %d", smk.params.seed)
        return None, {"kind": "random", "seed": smk.params.seed}
    if kind == "imagenet":
        digest, path = weights.read_record(Path(smk.input.weights))
        kind = f"imagenet: {models.default_weights(smk.wildcards.model)}"
    else:
        path, digest = Path(smk.input.weights), None
    state = weights.load_state_dict(path, expected_sha256=digest)
    digest = digest or sha256_file(path)
    log.info("weights: %s (%s, sha256 %s)", kind, path.name, digest)
    return state, {"kind": kind, "file": path.name, "sha256": digest}


def device_name(device, torch) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


run_job(main, snakemake)  # noqa: F821 - injected by Snakemake
