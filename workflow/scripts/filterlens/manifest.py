"""MANIFEST.sha256: the data outputs a run certifies, and what else its folders may hold.

The manifest lists, in sha256sum format with paths relative to the run folder (sorted), every data
output of the run, as the run's own tables name them: each frame in frames.tsv, frames.tsv itself,
the statistics, the video (with save_video) and the shared activations (`../activations`: the
`<layer>.npy` of each line of layers.tsv, layers.tsv, predictions.tsv, input.png). `NON_DATA`
names every other file a run folder or its activations folder may hold, and why it stays out of
the manifest; a file that is neither is foreign to the run.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

from . import frames
from .files import read_tsv, sha256_file, write_text
from .stats import FILTER_STATS

MANIFEST = "MANIFEST.sha256"
INDEX = frames.INDEX
ACTIVATIONS = "../activations"
LAYERS = f"{ACTIVATIONS}/layers.tsv"
STATISTICS = ("activation_stats.txt", "activation_stats.tsv")
ACTIVATION_FILES = ("layers.tsv", "predictions.tsv", "input.png", FILTER_STATS)
# Relative to the run folder; a name ending in "/" stands for everything under that folder.
NON_DATA = {
    MANIFEST: "the manifest itself",
    "provenance.json": "machine facts (versions, CPU, threads), which differ for the same data",
    "scales.tsv": "normalization ranges: an intermediate of the frames",
    "equalization.npz": "histogram-equalization curves: an intermediate of the frames",
    "top_filters.tsv": "report: ranked from activation_stats.tsv",
    "sheets/": "report: contact sheets drawn from the frames",
    "preview.webp": "report: the frames, shrunk",
    f"{ACTIVATIONS}/extraction.json": "machine facts of the extraction (device, threads)",
    f"frames/{frames.RECORD}": "the settings the frames were rendered with (for start-up checks)",
}
MARKER = ".snakemake_timestamp"  # Snakemake's marker inside directory outputs
LINE = re.compile(r"([0-9a-f]{64})  (\S.*)")


class ManifestError(Exception):
    """A manifest, or a table it is built from, is missing or malformed."""


def run_outputs(run_dir: str | os.PathLike, video: str | None) -> list[str]:
    """The data outputs of the run in `run_dir`, relative to it, sorted: what its manifest lists.
    `video`: the video's file name (run setting video_filename), None without save_video."""
    run_dir = Path(run_dir)
    try:
        listed = [frame.path for frame in frames.read_index(run_dir)]
    except frames.FramesError as err:
        raise ManifestError(str(err)) from None
    layers = [_file_name(run_dir / LAYERS, row["layer"]) for row in _table(run_dir / LAYERS, "layer")]
    outputs = listed + [INDEX, *STATISTICS] + ([video] if video else [])
    outputs += [f"{ACTIVATIONS}/{name}" for name in ACTIVATION_FILES]
    outputs += [f"{ACTIVATIONS}/{layer}.npy" for layer in layers]
    return sorted(set(outputs))


def write_manifest(run_dir: str | os.PathLike, video: str | None) -> list[str]:
    """Checksum the run's data outputs into `run_dir`/MANIFEST.sha256 (atomically); return its
    lines. ManifestError when an output is not there."""
    run_dir = Path(run_dir)
    lines = []
    for rel in run_outputs(run_dir, video):
        if not (run_dir / rel).is_file():
            raise ManifestError(f"{run_dir / rel} is missing: the manifest of {run_dir} lists it")
        lines.append(f"{sha256_file(run_dir / rel)}  {rel}")
    write_text(run_dir / MANIFEST, "\n".join(lines) + "\n")
    return lines


def read_manifest(run_dir: str | os.PathLike) -> dict[str, str]:
    """path -> SHA-256 of `run_dir`/MANIFEST.sha256; ManifestError when missing or malformed."""
    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        raise ManifestError(
            f"{path} is missing: without it nothing certifies the run's files. Publish the whole "
            f"run folder with its manifest (or point at a folder results/<model>/<image>/<run>)"
        )
    entries: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        match = LINE.fullmatch(line)
        if not line.strip():
            continue
        if match is None or match[2] in entries:
            why = "a repeated path" if match else "not '<SHA-256>  <path>'"
            raise ManifestError(f"{path}, line {number}: {why}; the manifest is damaged")
        entries[match[2]] = match[1]
    return entries


def folder_files(run_dir: str | os.PathLike) -> list[str]:
    """Every file in the run folder and its activations folder, relative to the run folder,
    except the known non-data files (NON_DATA) and Snakemake's markers."""
    run_dir = Path(run_dir)
    found = []
    for top, prefix in ((run_dir, ""), (run_dir / ACTIVATIONS, f"{ACTIVATIONS}/")):
        for folder, _, names in os.walk(top):
            rel_folder = Path(folder).relative_to(top).as_posix()
            for name in names:
                rel = prefix + (name if rel_folder == "." else f"{rel_folder}/{name}")
                if name != MARKER and not non_data(rel):
                    found.append(rel)
    return sorted(found)


def non_data(rel: str) -> bool:
    return rel in NON_DATA or any(k.endswith("/") and rel.startswith(k) for k in NON_DATA)


def _table(path: Path, column: str) -> list[dict[str, str]]:
    if not path.is_file():
        raise ManifestError(f"{path} is missing: it lists the run's outputs; publish it with the run")
    try:
        rows = read_tsv(path)
    except (OSError, UnicodeDecodeError, ValueError, csv.Error) as err:
        raise ManifestError(f"{path} is not a readable table ({err})") from None
    if any(row.get(column) in (None, "") for row in rows):
        raise ManifestError(f"{path}: a row lacks column '{column}'; the table is damaged")
    return rows


def _file_name(table: Path, layer: str) -> str:
    if "/" in layer or layer in (".", ".."):
        raise ManifestError(f"{table} lists layer '{layer}', not a file name; the table is damaged")
    return layer
