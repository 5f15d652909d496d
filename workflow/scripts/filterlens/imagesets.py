"""The folder of one image set of one model: what each filter responds to across the set.

    results/<model>/_sets/<set>/
        members.tsv           image, activations: the set's images in order, with their folders
        top_images.tsv        per filter the top images by mean and by max (filterlens.topimages)
        filter_means.tsv      every filter's mean on every image (filterlens.filtermap)
        examples/<layer>.png  per filter its top images' receptive-field crops (filterlens.examples)
        filter_map/<layer>.png  filters x images heatmap of the means (filterlens.filtermap)
        MANIFEST.sha256       SHA-256 of all the above (sha256sum -c)
        provenance.json       what made the set's outputs
        explorer/             the explorer page (filterlens.explorer), for the report
    results/<model>/_receptive_fields.tsv   each layer's receptive field (filterlens.receptive)

A leading `_` is never an image name, so these folders never meet an image's.
"""

from __future__ import annotations

import os
from pathlib import Path

from .files import read_tsv, sha256_file, write_text, write_tsv

SET_DIR = "results/{model}/_sets/{set}"
FIELDS = "results/{model}/_receptive_fields.tsv"
MEMBERS = "members.tsv"
MANIFEST = "MANIFEST.sha256"


def write_members(path: str | os.PathLike, members: dict[str, str]) -> None:
    """members.tsv: image name -> its activations folder, in set order."""
    write_tsv(path, ("image", "activations"), members.items())


def read_members(path: str | os.PathLike) -> dict[str, str]:
    return {row["image"]: row["activations"] for row in read_tsv(path)}


def write_manifest(folder: str | os.PathLike) -> list[str]:
    """MANIFEST.sha256 over every file of the set folder except the manifest, provenance.json and
    the explorer (a view for browsers, made by its own step); returns its lines."""
    folder = Path(folder)
    skip = {MANIFEST, "provenance.json"}
    files = sorted(
        p for p in folder.rglob("*")
        if p.is_file() and p.name not in skip and p.name != ".snakemake_timestamp"
        and "explorer" not in p.relative_to(folder).parts
    )  # fmt: skip
    lines = [f"{sha256_file(p)}  {p.relative_to(folder).as_posix()}" for p in files]
    write_text(folder / MANIFEST, "\n".join(lines) + "\n")
    return lines


def rank(members: dict[str, str], fields_table: str | os.PathLike, top_images: int,
         folder: str | os.PathLike) -> int:
    """members.tsv, top_images.tsv and filter_means.tsv of the set in `folder`, from its
    members' activations (image -> folder) and the model's receptive fields; returns the rows
    of top_images.tsv written."""
    from . import filtermap, receptive, topimages  # noqa: PLC0415
    from .activations import Activations  # noqa: PLC0415

    folder = Path(folder)
    image_set = topimages.load_set(members)
    fields = receptive.read_table(fields_table)
    width, height = Activations(next(iter(members.values()))).img_size
    topimages.check_fields(image_set, fields, (height, width))
    rows = topimages.rank_images(image_set, top_images, fields)
    write_members(folder / MEMBERS, members)
    topimages.write_table(folder / topimages.FILENAME, rows)
    filtermap.write_table(folder / filtermap.FILENAME, filtermap.mean_rows(image_set))
    return len(rows)


def draw(folder: str | os.PathLike, fields_table: str | os.PathLike, model: str, set_name: str,
         weights: str, lut, top_images: int, threads: int) -> int:
    """examples/<layer>.png and filter_map/<layer>.png of the set in `folder` (ranked by `rank`),
    drawn on `threads` threads; returns the number of layers."""
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    from . import examples, filtermap, receptive, topimages  # noqa: PLC0415
    from .activations import Activations  # noqa: PLC0415
    from .files import atomic_dir, put_bytes  # noqa: PLC0415
    from .sheets import sheet_png  # noqa: PLC0415

    folder = Path(folder)
    members = read_members(folder / MEMBERS)
    fields = receptive.read_table(fields_table)
    ranked = topimages.read_table(folder / topimages.FILENAME)
    means = filtermap.read_table(folder / filtermap.FILENAME)
    layers = Activations(next(iter(members.values()))).names
    inputs = examples.load_inputs({i: Path(f) / "input.png" for i, f in members.items()
                                   if any(e.image == i for e in ranked)})  # fmt: skip

    with atomic_dir(folder / "examples") as examples_dir, \
            atomic_dir(folder / "filter_map") as maps_dir:  # fmt: skip

        def draw_layer(layer: str) -> None:
            page = examples.examples_page(model, layer, weights, set_name, len(members),
                                          fields[layer], topimages.by_filter(ranked, layer),
                                          inputs, top_images)  # fmt: skip
            put_bytes(examples_dir / f"{layer}.png", sheet_png(page.image, photographic=True))
            names, table = means[layer]
            heat = filtermap.filter_map_page(model, layer, weights, set_name, names, table, lut)
            put_bytes(maps_dir / f"{layer}.png", sheet_png(heat.image))

        with ThreadPoolExecutor(max(1, threads)) as pool:
            list(pool.map(draw_layer, layers))
    return len(layers)
