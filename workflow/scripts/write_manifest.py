"""Checksum a run's data outputs into MANIFEST.sha256 and record provenance beside it (rule
write_manifest). Same stack, same bytes: the manifest is what local, Slurm and container runs
are compared by."""

import json
from pathlib import Path

from filterlens import provenance
from filterlens.files import read_tsv, write_text
from filterlens.jobs import run_job
from filterlens.video import ffmpeg_version


def main(smk):
    run_dir = Path(smk.output.manifest).parent
    frames = [run_dir / row["path"] for row in read_tsv(smk.input.index)]
    files = frames + [Path(f) for f in smk.input.data] + provenance.activation_files(smk.input.maps)
    write_text(smk.output.manifest, "\n".join(provenance.manifest_lines(run_dir, files)) + "\n")
    extraction = json.loads((Path(smk.input.maps) / "extraction.json").read_text())
    record = {
        "model": smk.wildcards.model,
        "image": smk.wildcards.image,
        "run": smk.wildcards.run,
        "versions": {**provenance.versions(), "ffmpeg": ffmpeg_version()},
        "git_revision": provenance.git_revision(Path(smk.params.workflow_dir)),
        "cpu": provenance.cpu_model(),
        "device": extraction["device_name"],
        "threads": extraction["threads"],
        "weights": extraction["weights"],
        "config": smk.params.config,
        "run_settings": smk.params.settings,
    }
    write_text(smk.output.provenance, json.dumps(record, indent=2, sort_keys=True) + "\n")


run_job(main, snakemake)  # noqa: F821 - injected by Snakemake
