"""Draw a set's pictures (rule draw_set): per layer the dataset examples (every filter's top
images as crops of what its unit sees) and the filter x image map; then the set's manifest and
provenance."""

import logging
from pathlib import Path

import numpy as np

from filterlens import imagesets
from filterlens.activations import Activations
from filterlens.checkout import REPO
from filterlens.describe import weights_text
from filterlens.jobs import run_job
from filterlens.provenance import write_provenance

log = logging.getLogger("filterlens")


def main(smk):
    w, p = smk.wildcards, smk.params
    folder = Path(smk.output.manifest).parent
    info = Activations(smk.input.maps[0]).info
    weights = weights_text(info["weights"], short=True)
    layers = imagesets.draw(folder, smk.input.fields, w.model, w.set, weights,
                            np.load(smk.input.palette), p.top_images, smk.threads)  # fmt: skip
    imagesets.write_manifest(folder)
    write_provenance(
        smk.output.provenance, model=w.model, image=f"_sets/{w.set}", run="set",
        config=p.config, run_settings=p.settings, device=info["device_name"],
        threads=info["threads"], weights=info["weights"], workflow_dir=REPO,
    )  # fmt: skip
    log.info("set %s: pictures of %d layers", w.set, layers)


run_job(main, snakemake)  # noqa: F821 - injected by Snakemake
