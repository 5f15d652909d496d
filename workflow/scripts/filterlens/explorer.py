"""The explorer of an image set: one static page to pick a layer and a filter and see that filter's
map on every image of the set, on one scale per filter shared by the set, with the set's top
images for the filter and the raw activation under the pointer.

The page opens from disk with no server. Browsers refuse `fetch` for file:// pages and taint
canvases drawn from file:// images, so the data travel as small script files, one per layer and
filter, that the page loads when it needs them. Each holds that filter's maps of the held images
quantized to uint16 over the filter's [low, high] (min and max over the held images), so a value
read back is within (high - low) / 131070 of the float32 activation; the page decodes them into
typed arrays and draws them with the palette (canvases drawn from data are never tainted).

Folder written by `write_explorer` (all links relative):

    index.html, explorer.css, explorer.js   the page (assets/explorer/ of this package)
    data/index.js                           the set, layers, held and listed images, palette
    maps/<layer>/<filter:04d>.js            one filter: its scale, each image's max and mean, the
                                            maps, the filter's top images
    inputs/<n:04d>.png                      input.png of held images and of every top image
                                            (n = the image's position in the set)
"""

from __future__ import annotations

import base64
import html
import json
import shutil
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
from PIL import Image

from .activations import Activations
from .files import atomic_dir

ASSETS = Path(__file__).parent / "assets" / "explorer"
PAGE_FILES = ("index.html", "explorer.css", "explorer.js")
DEFAULT_CAP = 64  # config key explorer_max_images
LEVELS = 65535  # uint16 transport: value = low + q / LEVELS * (high - low)
TOP_COLUMNS = (
    "layer", "filter", "by", "rank", "image", "value", "y", "x", "top", "left", "bottom", "right",
    "whole",
)  # fmt: skip
TOP_INTEGERS = ("filter", "rank", "y", "x", "top", "left", "bottom", "right", "whole")
MEASURES = ("max", "mean")


class ExplorerError(ValueError):
    """The set cannot be shown; the message names the input and the fix."""


@dataclass(frozen=True)
class Written:
    """What write_explorer wrote, for the job's log."""

    files: int
    bytes: int
    first_view_bytes: int  # what opening index.html loads (page, index, first filters, inputs)
    held: int  # images whose maps the explorer holds
    listed: int  # images of the set named only (beyond the cap)


@dataclass(frozen=True)
class _Image:
    name: str
    folder: Path  # results/<model>/<image>/activations
    position: int  # in the set

    @property
    def input_file(self) -> str:
        return f"inputs/{self.position:04d}.png"


def write_explorer(
    target: str | Path,
    set_name: str,
    images: Sequence[tuple[str, str | Path]] | Mapping[str, str | Path],
    top_rows: Iterable[Mapping],
    palette: np.ndarray,
    weights: str,
    note: str,
    cap: int = DEFAULT_CAP,
) -> Written:
    """Write the explorer folder `target` atomically and say what it holds.

    `images`: (name, activation folder) in set order; the first `cap` are held (their maps are in
    the explorer), the rest are listed by name. `top_rows`: rows of the set's top_images.tsv
    (TOP_COLUMNS; strings as read_tsv gives them, or numbers). `palette`: the base cmap at 256
    levels, uint8 256 x 3 (render.palette). `weights` and `note` are shown on the page as given.
    """
    members = _members(images)
    if not (isinstance(cap, int) and cap >= 1):
        raise ExplorerError(f"explorer_max_images is {cap!r}: it must be an integer >= 1")
    held, listed = members[:cap], members[cap:]
    layers = _common_layers(held)
    size = _input_size(held)
    top = _top_images(top_rows, layers, {m.name: m for m in members})
    shown = _shown_inputs(held, top, {m.name: m for m in members})
    index = {
        "set": set_name, "weights": weights, "note": note, "cap": cap,
        "input": {"width": size[0], "height": size[1]},
        "held": [m.name for m in held], "listed": [m.name for m in listed],
        "inputs": {m.name: m.input_file for m in shown},
        "layers": [_layer_entry(row) for row in layers],
        "palette": _palette_hex(palette), "levels": LEVELS,
    }  # fmt: skip
    with atomic_dir(target) as tmp:
        out = _Files(tmp)
        for name in PAGE_FILES:
            out.put(name, _page_file(name, set_name))
        for m in shown:
            out.copy(m.folder / "input.png", m.input_file)
        for row in layers:
            _write_layer_maps(out, row, held, top)
        out.put("data/index.js", _script("index", index))
    first_view = _first_view_bytes(out.sizes, layers[0], top, shown)
    return Written(len(out.sizes), sum(out.sizes.values()), first_view, len(held), len(listed))


def map_payload(maps: np.ndarray) -> dict:
    """One filter over the held images (N x H x W float32): its shared scale, each image's max and
    mean, and the maps as little-endian uint16 over [low, high], base64."""
    maps = np.asarray(maps, dtype=np.float32)
    low, high = float(maps.min()), float(maps.max())
    span = high - low
    if span > 0:
        q = np.floor((maps.astype(np.float64) - low) * (LEVELS / span) + 0.5)
        levels = np.clip(q, 0, LEVELS).astype("<u2")
    else:  # a constant filter: every level 0 reads back as low, exactly
        levels = np.zeros(maps.shape, dtype="<u2")
    flat = maps.reshape(len(maps), -1)
    return {
        "low": low, "high": high,
        "max": [_short(v) for v in flat.max(axis=1)],
        "mean": [_short(v) for v in flat.mean(axis=1, dtype=np.float64)],
        "data": base64.b64encode(levels.tobytes()).decode("ascii"),
    }  # fmt: skip


def decode_levels(payload: Mapping, shape: tuple[int, ...]) -> np.ndarray:
    """The values a page reads back from a map_payload (what the pointer shows)."""
    levels = np.frombuffer(base64.b64decode(payload["data"]), dtype="<u2").reshape(shape)
    return payload["low"] + levels / LEVELS * (payload["high"] - payload["low"])


def read_script(path: str | Path) -> dict:
    """The data a file of the explorer registers (the JSON inside `filterlensExplorer.x(...)`)."""
    text = Path(path).read_text(encoding="ascii")
    return json.loads(text[text.index("(") + 1 : text.rindex(")")])


# --- the set ------------------------------------------------------------------------------------
def _members(images) -> list[_Image]:
    pairs = list(images.items()) if isinstance(images, Mapping) else list(images)
    if not pairs:
        raise ExplorerError("the set has no images: name at least one image in the set")
    seen = set()
    for name, _ in pairs:
        if name in seen:
            raise ExplorerError(f"image {name!r} is named twice in the set: name each image once")
        seen.add(name)
    return [_Image(str(name), Path(folder), i) for i, (name, folder) in enumerate(pairs)]


def _common_layers(held: Sequence[_Image]) -> list[dict]:
    """The layer table every held image shares (the maps of one filter go on one scale)."""
    first = _layer_rows(held[0])
    if not first:
        raise ExplorerError(
            f"{held[0].folder / 'layers.tsv'} lists no layers: re-run the image's extraction"
        )
    shape = _shapes(first)
    for m in held[1:]:
        other = _shapes(_layer_rows(m))
        if other != shape:
            ours, theirs = next((a, b) for a, b in zip_longest(shape, other) if a != b)
            raise ExplorerError(
                f"{m.folder / 'layers.tsv'} (image {m.name!r}) does not match "
                f"{held[0].folder / 'layers.tsv'} (image {held[0].name!r}): {theirs} where the "
                f"first image has {ours} (layer, channels, height, width). The images of a set "
                "must go through one model, with the same layers and img_size"
            )
    return first


def _shapes(rows: Sequence[dict]) -> list[tuple]:
    return [(r["layer"], r["channels"], r["height"], r["width"]) for r in rows]


def _layer_rows(m: _Image) -> list[dict]:
    try:
        return [
            {"layer": layer.name, "module": layer.module, "type": layer.kind,
             "channels": layer.channels, "height": layer.height, "width": layer.width}
            for layer in Activations(m.folder).layers
        ]  # fmt: skip
    except FileNotFoundError:
        raise ExplorerError(
            f"{m.folder / 'layers.tsv'} (image {m.name!r}) is missing: extract the image's "
            "activations first"
        ) from None


def _input_size(held: Sequence[_Image]) -> tuple[int, int]:
    sizes = {}
    for m in held:
        path = m.folder / "input.png"
        try:
            with Image.open(path) as image:
                sizes[m.name] = image.size
        except (OSError, ValueError) as err:
            raise _unreadable(path, m, err) from None
    size = sizes[held[0].name]
    for name, other in sizes.items():
        if other != size:
            raise ExplorerError(
                f"input.png of image {name!r} is {other[0]}x{other[1]} but that of "
                f"{held[0].name!r} is {size[0]}x{size[1]}: the images of a set must share one "
                "img_size"
            )
    return size


def _shown_inputs(held, top, by_name) -> list[_Image]:
    """Held images and every image the top lists name, in set order."""
    named = {e[1] for lists in top.values() for entries in lists.values() for e in entries}
    names = {m.name for m in held} | named
    return sorted((by_name[n] for n in names), key=lambda m: m.position)


# --- the top images -----------------------------------------------------------------------------
def _top_images(rows: Iterable[Mapping], layers: Sequence[dict], by_name) -> dict:
    """(layer, filter) -> {"max": [...], "mean": [...]}, each ranked list of
    [rank, image, value, y, x, top, left, bottom, right, whole]."""
    shapes = {r["layer"]: r for r in layers}
    found: dict[tuple[str, int], dict[str, list]] = {}
    for n, row in enumerate(rows, start=2):  # line 1 of the table is its header
        where = f"top_images.tsv line {n}"
        missing = [c for c in TOP_COLUMNS if c not in row]
        if missing:
            raise ExplorerError(
                f"{where} has no column {', '.join(missing)}: expected {', '.join(TOP_COLUMNS)}"
            )
        try:
            ints = {c: int(row[c]) for c in TOP_INTEGERS}
            value = float(row["value"])
        except (TypeError, ValueError) as err:
            raise ExplorerError(
                f"{where}: {err}; {', '.join(TOP_INTEGERS)} are integers, value a number"
            ) from None
        layer, by, image = str(row["layer"]), str(row["by"]), str(row["image"])
        _check_top_row(where, layer, by, image, ints, shapes, by_name)
        entry = [ints["rank"], image, _short(value), ints["y"], ints["x"]]
        entry += [ints[c] for c in ("top", "left", "bottom", "right", "whole")]
        found.setdefault((layer, ints["filter"]), {m: [] for m in MEASURES})[by].append(entry)
    for lists in found.values():
        for entries in lists.values():
            entries.sort(key=lambda e: e[0])
    return found


def _check_top_row(where, layer, by, image, ints, shapes, by_name) -> None:
    if layer not in shapes:
        raise ExplorerError(
            f"{where}: layer {layer!r} is not in the set's layers.tsv ({', '.join(shapes)})"
        )
    shape = shapes[layer]
    problems = []
    if not 0 <= ints["filter"] < shape["channels"]:
        problems.append(f"filter {ints['filter']} is not in 0..{shape['channels'] - 1}")
    if by not in MEASURES:
        problems.append(f"by is {by!r}, not mean or max")
    if image not in by_name:
        problems.append(f"image {image!r} is not in the set")
    if not (0 <= ints["y"] < shape["height"] and 0 <= ints["x"] < shape["width"]):
        problems.append(
            f"(y, x) = ({ints['y']}, {ints['x']}) is outside the "
            f"{shape['height']}x{shape['width']} map"
        )
    if not (ints["top"] < ints["bottom"] and ints["left"] < ints["right"]):
        problems.append("the box (top, left, bottom, right) is empty")
    if ints["whole"] not in (0, 1):
        problems.append(f"whole is {ints['whole']}, not 0 or 1")
    if problems:
        raise ExplorerError(f"{where} ({layer}, filter {ints['filter']}): {'; '.join(problems)}")


# --- the files ----------------------------------------------------------------------------------
class _Files:
    """Writes the explorer's files under `root` and remembers each one's size by relative path."""

    def __init__(self, root: Path):
        self.root = root
        self.sizes: dict[str, int] = {}

    def put(self, name: str, data: bytes) -> None:
        self._path(name).write_bytes(data)
        self.sizes[name] = len(data)

    def copy(self, source: Path, name: str) -> None:
        shutil.copyfile(source, self._path(name))
        self.sizes[name] = self._path(name).stat().st_size

    def _path(self, name: str) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path


def _first_view_bytes(sizes: Mapping[str, int], first: dict, top: dict, shown) -> int:
    """What opening index.html loads: the page and the index, the first filter (and the next,
    which the page fetches ahead), the inputs of the first filter's top images."""
    ahead = range(min(2, first["channels"]))
    tops = {e[1] for lists in top.get((first["layer"], 0), {}).values() for e in lists}
    return (
        sum(sizes[name] for name in PAGE_FILES)
        + sizes["data/index.js"]
        + sum(sizes[_map_file(first["layer"], f)] for f in ahead)
        + sum(sizes[m.input_file] for m in shown if m.name in tops)
    )


def _write_layer_maps(out: _Files, row: dict, held: Sequence[_Image], top: dict) -> None:
    """One script per filter: the filter's maps over the held images, read from each image's
    memory-mapped .npy one filter at a time (a whole layer of 64 images need not fit in memory)."""
    layer, shape = row["layer"], (row["channels"], row["height"], row["width"])
    arrays = [_layer_array(m, layer, shape) for m in held]
    for f in range(shape[0]):
        maps = np.stack([a[f] for a in arrays])
        if not np.isfinite(maps).all():
            bad = next(m for m, a in zip(held, maps) if not np.isfinite(a).all())
            raise ExplorerError(
                f"{bad.folder / (layer + '.npy')} (image {bad.name!r}) holds NaN or infinite "
                f"values in filter {f}: the explorer needs finite activations; check the model "
                "and its weights"
            )
        payload = {"layer": layer, "filter": f, **map_payload(maps)}
        payload["top"] = top.get((layer, f), {m: [] for m in MEASURES})
        out.put(_map_file(layer, f), _script("maps", payload))


def _layer_array(m: _Image, layer: str, shape: tuple[int, int, int]) -> np.ndarray:
    path = m.folder / f"{layer}.npy"
    try:
        array = Activations(m.folder).map(layer)
    except (OSError, ValueError) as err:
        raise _unreadable(path, m, err) from None
    if array.shape != shape or array.dtype != np.float32:
        raise ExplorerError(
            f"{path} (image {m.name!r}) is {array.dtype} {array.shape}, but layers.tsv says "
            f"float32 {shape}: re-run its extraction"
        )
    return array


def _unreadable(path: Path, m: _Image, err: Exception) -> ExplorerError:
    return ExplorerError(f"{path} (image {m.name!r}) cannot be read ({err}): re-run its extraction")


def _map_file(layer: str, f: int) -> str:
    return f"maps/{layer}/{f:04d}.js"


def _layer_entry(row: Mapping) -> dict:
    return {k: row[k] for k in ("layer", "module", "type", "channels", "height", "width")}


def _script(kind: str, data: dict) -> bytes:
    """A data file: one call of the page's registration function (ASCII: any name is safe)."""
    body = json.dumps(data, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    return f"filterlensExplorer.{kind}({body});\n".encode("ascii")


def _page_file(name: str, set_name: str) -> bytes:
    text = (ASSETS / name).read_text(encoding="utf-8")
    if name == "index.html":
        text = text.replace("@TITLE@", html.escape(set_name))
    return text.encode("utf-8")


def _palette_hex(palette: np.ndarray) -> str:
    lut = np.asarray(palette)
    if lut.shape != (256, 3) or lut.dtype != np.uint8:
        raise ExplorerError(
            f"the palette is {lut.dtype} {lut.shape}: pass the base cmap as uint8 256 x 3 "
            "(filterlens.render.palette)"
        )
    return lut.tobytes().hex()


def _short(value) -> float:
    """A value for display: 7 significant digits (a float32 holds about that many)."""
    return float(f"{float(value):.7g}")
