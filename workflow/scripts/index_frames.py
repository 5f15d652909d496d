"""List a run's frames in video order (rule index_frames): layers in network order, filters by
index. frames.tsv is what the video, the report and other tools read."""

from pathlib import Path

from filterlens.files import write_tsv
from filterlens.jobs import run_job


def main(smk):
    run_dir = Path(smk.output.index).parent
    rows = []
    for folder in map(Path, smk.input.frames):
        for png in sorted(folder.glob("*.png")):
            filter_index = int(png.name.split(".")[0].split("_")[0])
            rows.append((len(rows), folder.name, filter_index, png.relative_to(run_dir).as_posix()))
    write_tsv(smk.output.index, ("frame", "layer", "filter", "path"), rows)


run_job(main, snakemake)  # noqa: F821 - injected by Snakemake
