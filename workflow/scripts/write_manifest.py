"""Checksum a run's data outputs into MANIFEST.sha256 and record provenance beside it (rule
write_manifest). Same stack, same bytes: the manifest is what local, Slurm and container runs
are compared by."""

import json
from pathlib import Path

from filterlens.jobs import run_job
from filterlens.manifest import write_manifest
from filterlens.provenance import write_provenance


def main(smk):
    settings = smk.params.settings
    write_manifest(Path(smk.output.manifest).parent,
                   video=settings["video_filename"] if settings["save_video"] else None)  # fmt: skip
    extraction = json.loads((Path(smk.input.maps) / "extraction.json").read_text())
    write_provenance(
        smk.output.provenance,
        model=smk.wildcards.model,
        image=smk.wildcards.image,
        run=smk.wildcards.run,
        config=smk.params.config,
        run_settings=settings,
        device=extraction["device_name"],
        threads=extraction["threads"],
        weights=extraction["weights"],
        workflow_dir=smk.params.workflow_dir,
    )


run_job(main, snakemake)  # noqa: F821 - injected by Snakemake
