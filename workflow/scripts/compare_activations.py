"""Compare two activation folders (rule compare_activations): for every layer both hold with the
same shape, A and B side by side on one shared scale and their difference, as <layer>.png, with
layers.tsv listing what was compared and what was not, and why."""

import logging

import numpy as np
from PIL import Image

from filterlens import compare, sheets
from filterlens.activations import Activations
from filterlens.describe import weights_text
from filterlens.files import atomic_dir, write_tsv
from filterlens.jobs import run_job

log = logging.getLogger("filterlens")


def main(smk):
    folders = {side: Activations(getattr(smk.input, side)) for side in ("a", "b")}
    pair = smk.params.pair
    shapes = {
        side: {m.name: (m.channels, m.height, m.width) for m in acts.layers}
        for side, acts in folders.items()
    }
    compared, skipped = compare.matching_layers(shapes["a"], shapes["b"])
    if not compared:
        reasons = "; ".join(f"{layer}: {why}" for layer, why in skipped)
        raise compare.CompareError(
            f"compare.{smk.wildcards.name}: no layer to compare, A and B share no layer of the "
            f"same shape ({reasons}). Select the same layers for both (config key 'layers')."
        )
    lut, diverging = np.load(smk.input.palette), np.load(smk.input.diverging)
    names = {s: f"{pair[s]['model']} · {pair[s]['image']}" for s in folders}
    thumbs = [compare.thumbnail(Image.open(folders[s].input_png)) for s in ("a", "b")]
    weights = {s: weights_text(folders[s].weights, short=True) for s in folders}
    weights_line = weights["a"] if weights["a"] == weights["b"] else f"A: {weights['a']}, B: {weights['b']}"
    rows = []
    with atomic_dir(smk.output.folder) as out:
        for layer in compared:
            a, b = folders["a"].map(layer), folders["b"].map(layer)
            low, high = compare.shared_range(a, b)
            limit = compare.difference_limit(a, b)
            c, h, w = a.shape
            grid = sheets.make_grid(c, (w, h), width=compare.PANEL_WIDTH)
            image = compare.compose_comparison(
                title=f"compare {smk.wildcards.name} · {layer} · {c} filters, maps {h}x{w}",
                lines=[
                    f"A: {names['a']}   B: {names['b']}   · {weights_line}",
                    f"A and B on one scale, [{sheets.format_value(low)}, {sheets.format_value(high)}]"
                    f" = min and max over both; A - B on a symmetric scale of +-{sheets.format_value(limit)}",
                ],
                headings=[f"A: {names['a']}", f"B: {names['b']}", "A - B"],
                thumbnails=[thumbs[0], thumbs[1], None],
                grid=grid,
                panels=[
                    compare.panel_tiles(a, low, high, lut, grid.tile),
                    compare.panel_tiles(b, low, high, lut, grid.tile),
                    compare.difference_tiles(a, b, limit, diverging, grid.tile),
                ],
                labels=[str(f) for f in range(c)],
                scales=[
                    sheets.ColorScale("raw activation, shared by A and B", sheets.value_ticks(low, high), lut),
                    sheets.ColorScale("raw activation, shared by A and B", sheets.value_ticks(low, high), lut),
                    sheets.ColorScale("A - B", sheets.value_ticks(-limit, limit), diverging),
                ],
            )
            (out / f"{layer}.png").write_bytes(sheets.sheet_png(image))
            rows.append((layer, "compared", c, h, w, low, high, limit, ""))
            log.info("%s: [%g, %g], max |A - B| %g", layer, low, high, limit)
        rows += [(layer, "skipped", "", "", "", "", "", "", why) for layer, why in skipped]
        write_tsv(out / "layers.tsv", compare.COLUMNS, rows)
    log.info("compared %d layers, skipped %d", len(compared), len(skipped))


run_job(main, snakemake)  # noqa: F821 - injected by Snakemake
