"""The HTML page of one model and image: what the report shows beyond single files.

A page is a folder: index.html and the pictures it shows, all by relative links, so that it opens
from disk, inside Snakemake's report (which stores the folder as is) or on its own. No scripts,
no fonts or styles from the network.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Mapping, Sequence

STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1600px; padding: 0 20px 40px;
       color: #1d1d1f; background: #fff; }
h1 { margin: 18px 0 4px; } h2 { margin-top: 32px; border-bottom: 1px solid #ddd; }
nav a { margin-right: 14px; } .muted { color: #666; } code { background: #f3f3f3; padding: 0 3px; }
.weights { padding: 8px 12px; border-radius: 6px; background: #eef4ff; border: 1px solid #b8cdf5; }
.weights.random { background: #fff4e5; border-color: #f0b35b; }
table { border-collapse: collapse; margin: 8px 0; } td, th { padding: 3px 10px; text-align: left;
       border-bottom: 1px solid #eee; vertical-align: top; } th { background: #f6f6f6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.row { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
img { max-width: 100%; height: auto; } img.pixels { image-rendering: pixelated; }
figure { margin: 16px 0 28px; } figcaption { color: #444; margin-top: 4px; }
.top { font-variant-numeric: tabular-nums; }
"""


@dataclass
class RunSection:
    name: str
    settings: Mapping
    preview: str | None  # relative path of the preview in the page folder
    preview_size: tuple[int, int]
    frames: int
    video: str | None  # file name of the run's lossless video, or None
    sheets: Sequence[tuple[str, str]]  # (layer, relative path) in network order
    top: Sequence[Mapping]  # rows of top_filters.tsv


@dataclass
class Page:
    model: str
    image: str
    weights: str  # in words, from extraction.json
    random_weights: bool
    extraction: Mapping
    predictions: Sequence[Mapping]
    layers: Sequence[Mapping]  # rows of layer_stats.tsv
    input_image: str
    stats_plot: str
    runs: Sequence[RunSection] = field(default_factory=list)


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def table(headers: Sequence[str], rows: Sequence[Sequence], numeric: Sequence[int] = ()) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(
            f"<td class=\"num\">{esc(v)}</td>" if i in numeric else f"<td>{esc(v)}</td>"
            for i, v in enumerate(row)
        ) + "</tr>"
        for row in rows
    )  # fmt: skip
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def number(value, digits: int = 4) -> str:
    return f"{float(value):.{digits}g}"


def anchor(*parts: str) -> str:
    return "-".join("".join(c if c.isalnum() else "-" for c in p) for p in parts)


def settings_text(s: Mapping) -> str:
    text = f"normalization {s['normalization_mode']}"
    if s.get("clip_percentiles"):
        text += f", clipped at percentiles {s['clip_percentiles'][0]:g}-{s['clip_percentiles'][1]:g}"
    if s.get("use_hist_eq"):
        text += ", histogram-equalized"
    text += ", 16-bit grayscale frames" if s.get("save_16bit") else f", cmap {s['cmap']}"
    if s.get("overlay_on_image"):
        text += f", blended over the input (alpha {s['overlay_alpha']:g})"
    return text + f", {s['resample']} upsampling"


def top_table(rows: Sequence[Mapping]) -> str:
    """One line per layer: the top filters by mean and by max, largest first."""
    layers: dict[str, dict[str, list[str]]] = {}
    for r in rows:
        cell = f"{r['filter']} ({number(r[r['by']], 3)})"
        layers.setdefault(r["layer"], {"mean": [], "max": []})[r["by"]].append(cell)
    return table(
        ("layer", "top by mean activation: filter (mean)", "top by max activation: filter (max)"),
        [(layer, ", ".join(by["mean"]), ", ".join(by["max"])) for layer, by in layers.items()],
    )


def render_page(page: Page) -> str:
    title = f"{page.model} · {page.image}"
    ex = page.extraction
    size = "x".join(str(v) for v in ex.get("img_size", []))
    filters = sum(int(r["filters"]) for r in page.layers)
    nav = ['<a href="#input">Input and predictions</a>', '<a href="#layers">Layer statistics</a>']
    nav += [f'<a href="#{anchor("run", r.name)}">Run {esc(r.name)}</a>' for r in page.runs]
    weights_class = "weights random" if page.random_weights else "weights"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)} · filterlens</title><style>{STYLE}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f'<p class="{weights_class}"><strong>Weights:</strong> {esc(page.weights)}.</p>',
        f'<p class="muted">The model saw the image at {esc(size)} pixels{input_note(ex)} on '
        f'{esc(ex.get("device_name", "?"))}; '
        f"{len(page.layers)} layers, {filters} filters. Values are raw outputs of the layers "
        f"(before any normalization or activation that follows them).</p>",
        f"<nav>{' '.join(nav)}</nav>",
        '<h2 id="input">Input and top-5 predictions</h2>',
        '<div class="row">',
        f'<img class="pixels" src="{esc(page.input_image)}" alt="the input image as the model saw it" '
        f'width="{display_width(ex.get("img_size", [224])[0])}">',
        "<div>",
        table(
            ("rank", "class", "label", "probability"),
            [(p["rank"], p["class"], p["label"], p["probability"]) for p in page.predictions],
            numeric=(0, 1, 3),
        ),
    ]
    if page.random_weights:
        out.append('<p class="muted">Random weights: these predictions mean nothing.</p>')
    out += [
        "</div></div>",
        '<h2 id="layers">Layer statistics</h2>',
        f'<img src="{esc(page.stats_plot)}" alt="per-layer mean, std, max and fraction of values at or below zero">',
        '<details><summary>Table (<a href="layer_stats.tsv">layer_stats.tsv</a>)</summary>',
        table(
            ("layer", "filters", "height", "width", "mean", "std", "min", "max", "fraction <= 0"),
            [
                (r["layer"], r["filters"], r["height"], r["width"], number(r["mean"]),
                 number(r["std"]), number(r["min"]), number(r["max"]), number(r["nonpositive"], 3))
                for r in page.layers
            ],  # fmt: skip
            numeric=range(1, 9),
        ),
        "</details>",
    ]
    for run in page.runs:
        out += render_run(page, run)
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def input_note(extraction: Mapping) -> str:
    """' (<how the image was preprocessed>; <how the network was built>)', from extraction.json."""
    parts = [extraction.get("preprocess", {}).get("description")]
    built = extraction.get("construction", {})
    if built.get("builder"):
        flags = "".join(f", {k}={built[k]}" for k in ("transform_input",) if k in built)
        parts.append(f"network: {built['builder']}{flags}")
    parts = [esc(part) for part in parts if part]
    return f" ({'; '.join(parts)})" if parts else ""


def render_run(page: Page, run: RunSection) -> list[str]:
    s = run.settings
    out = [
        f'<h2 id="{anchor("run", run.name)}">Run {esc(run.name)}</h2>',
        f"<p>{esc(settings_text(s))}.</p>",
        "<nav>"
        + " ".join(f'<a href="#{anchor(run.name, layer)}">{esc(layer)}</a>' for layer, _ in run.sheets)
        + "</nav>",
        "<h3>Preview</h3>",
    ]
    if run.preview:
        out.append(
            f'<img src="{esc(run.preview)}" width="{run.preview_size[0]}" '
            f'alt="animated preview: the contact sheets of run {esc(run.name)}, layer by layer">'
        )
    video = (
        f"the lossless video <code>{esc(run.video)}</code> holds the full-size frames (download it "
        "from the report's Video section; browsers do not play it)"
        if run.video
        else "this run writes no video (save_video: false)"
    )
    out += [
        f'<p class="muted">The contact sheets below, one layer after the other, shrunk and lossy; '
        f"{video}, all {run.frames} frames at {s['fps']:g} per second.</p>",
        f"<h3>Most active filters (top {_k(run.top)})</h3>",
        top_table(run.top),
        "<h3>Contact sheets</h3>",
        f'<p class="muted">{esc(sheet_note(s))}</p>',
    ]
    for layer, path in run.sheets:
        out.append(
            f'<figure id="{anchor(run.name, layer)}"><a href="{esc(path)}"><img src="{esc(path)}" '
            f'alt="contact sheet of {esc(layer)}"></a><figcaption>{esc(layer)} · '
            f"{esc(page.model)} · {esc(page.image)} · {esc(page.weights)}</figcaption></figure>"
        )
    return out


def display_width(width: int, least: int = 224) -> int:
    """Small pictures are shown enlarged by a whole factor to at least `least` CSS pixels."""
    return width * max(1, -(-least // max(1, width)))


def sheet_note(s: Mapping) -> str:
    if s["normalization_mode"] == "filter":
        return (
            "Every tile is scaled to its own range (normalization: filter): compare patterns, not "
            "brightness, between tiles. Orange frames: top filters by mean; blue labels: by max."
        )
    return (
        f"All tiles of a sheet share one scale (normalization: {s['normalization_mode']}); the "
        "colorbar gives its values. Orange frames: top filters by mean; blue labels: by max."
    )


def _k(rows: Sequence[Mapping]) -> int:
    return max((int(r["rank"]) for r in rows), default=0)
