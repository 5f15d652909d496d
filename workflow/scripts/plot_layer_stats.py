"""Plot the per-layer statistics (rule plot_layer_stats): mean, std and max of the raw
activations and the fraction of values <= 0, layer by layer in network order."""

import json
from pathlib import Path

from filterlens.describe import weights_text
from filterlens.files import atomic_path, read_tsv
from filterlens.jobs import run_job
from filterlens.summary import plot_layer_stats


def main(smk):
    info = json.loads((Path(smk.input.maps) / "extraction.json").read_text())
    w = smk.wildcards
    title = f"{w.model} · {w.image} · {weights_text(info['weights'], short=True)}"
    with atomic_path(smk.output.plot) as tmp:
        plot_layer_stats(read_tsv(smk.input.table), title, tmp)


run_job(main, snakemake)  # noqa: F821 - injected by Snakemake
