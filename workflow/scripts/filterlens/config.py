"""Validate the workflow's configuration and resolve it into models, images and runs.

One place knows the rules: the JSON schema (types, ranges, defaults) plus the checks a schema cannot
express (colormap names, model names, files that must exist, keys that exclude each other). Every
error names the key, the value and what is allowed, and is raised before any job runs.
"""

from __future__ import annotations

import copy
import glob
import os
import re
from pathlib import Path
from typing import Iterable

import jsonschema
import yaml

from .names import Name, name_max
from .names import problems as name_problems

# Keys a run under `runs:` may override: rendering and normalization only, so that runs share the
# fetched weights and the extracted activations.
RUN_KEYS = (
    "resample",
    "cmap",
    "normalization_mode",
    "clip_percentiles",
    "use_hist_eq",
    "save_16bit",
    "overlay_on_image",
    "overlay_alpha",
    "show_legend",
    "show_raw_stats",
    "save_video",
    "video_filename",
    "fps",
)
# Which step of a run uses which of its keys (the rest: finish_image, the video and statistics).
NORMALIZATION_KEYS = ("normalization_mode", "clip_percentiles", "use_hist_eq")
RENDER_KEYS = ("resample", "cmap", "save_16bit", "overlay_on_image", "overlay_alpha", "show_legend")
FINISH_KEYS = ("show_raw_stats", "save_video", "video_filename", "fps")
DEFAULT_RUN = "default"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


class ConfigError(ValueError):
    """An invalid configuration value; the message names the key and what is allowed."""


def load_schema(path: str | os.PathLike) -> dict:
    return load_yaml(path)


def load_yaml(path: str | os.PathLike) -> dict:
    """A YAML file's content, refused if its aliases expand beyond MAX_CONFIG_VALUES."""
    with open(path) as fh:
        data = yaml.safe_load(fh) or {}
    _check_expansion(data, f"config file {os.fspath(path)}")
    return data


# PyYAML builds an alias (*name) as a second reference to the anchored value: cheap to
# load, but validating, copying or writing the configuration visits every reference, so
# a few lines of nested aliases ("billion laughs") can stand for billions of values.
MAX_CONFIG_VALUES = 100_000


def check_expansion(config: dict, files: Iterable[str | os.PathLike] = ()) -> None:
    """Refuse each config file, then the merged configuration, whose aliases expand
    beyond MAX_CONFIG_VALUES values: the first thing at start-up, before any walk."""
    for path in files:
        load_yaml(path)
    _check_expansion(config, "the configuration")


def _check_expansion(data, source: str, limit: int = MAX_CONFIG_VALUES) -> None:
    try:
        size = _expanded_size(data, limit)
    except ValueError:
        raise ConfigError(
            f"{source}: a YAML alias refers to a value that contains it (a cycle), so the "
            "configuration never ends; write the values out instead"
        ) from None
    if size > limit:
        raise ConfigError(
            f"{source}: its YAML aliases (*name) expand to more than {limit:,} values, "
            "refused before filterlens reads them (a 'billion laughs' document would exhaust "
            "memory); write the values out, or use fewer nested aliases"
        )


def _expanded_size(data, limit: int) -> int:
    """How many values `data` holds with a shared list or mapping counted once per
    reference, as a walk would meet them; limit + 1 once above `limit`.

    Each distinct list or mapping is visited once (memoized by id), so the cost is that of
    the text however far its aliases expand. ValueError if a value contains itself.
    """
    sizes: dict[int, int] = {}  # id of a counted list or mapping -> its expanded size
    open_ids: set[int] = set()  # those whose contents are being counted: the ancestors
    stack = [data]
    while stack:
        node = stack[-1]
        if id(node) in sizes or not _is_container(node):
            stack.pop()
            continue
        values = list(node.values()) if isinstance(node, dict) else list(node)
        inner = [v for v in values if _is_container(v)]
        if id(node) not in open_ids:  # first visit: count the contents first
            open_ids.add(id(node))
            if any(id(v) in open_ids for v in inner):
                raise ValueError("a value contains itself")
            stack.extend(v for v in inner if id(v) not in sizes)
            continue
        size = 1 + len(values) - len(inner) + sum(sizes[id(v)] for v in inner)
        if size > limit:
            return limit + 1
        sizes[id(node)] = size
        open_ids.discard(id(node))
        stack.pop()
    return sizes.get(id(data), 1)


def _is_container(value) -> bool:
    return isinstance(value, (dict, list, tuple))


# Mappings that a later config replaces instead of extending.
REPLACED_MAPPINGS = ("images", "runs", "compare", "image_sets")


def replace_mappings(config: dict, overrides: list[dict]) -> None:
    """Let `--configfile` and `--config` replace `images`, `runs`, `compare` and `image_sets`
    wholesale.

    Snakemake merges nested mappings, so a config file with its own `images` would also get the
    shipped sample image, and `runs` could never shrink; for these keys the last one given wins.
    """
    for override in overrides:
        for key in REPLACED_MAPPINGS:
            if key in override:
                config[key] = copy.deepcopy(override[key])


def validate(config: dict, schema: dict) -> dict:
    """Return a copy of `config` with defaults filled in; raise ConfigError listing every problem."""
    config = copy.deepcopy(config)
    for key, value in config.items():
        if key in schema["properties"]:
            config[key] = _coerce(value, _resolve(schema, schema["properties"][key]), schema)
    for key, prop in schema["properties"].items():
        if key not in config:
            default = _resolve(schema, prop).get("default", prop.get("default"))
            config[key] = copy.deepcopy(default)
    validator = _Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        raise ConfigError("invalid configuration:\n" + "\n".join(_describe(schema, e) for e in errors))
    return config


# jsonschema counts 64.0 as an integer; the code after it needs an int. _coerce turns whole
# floats into ints, so here an integer is an int, and a float left over is refused.
_Validator = jsonschema.validators.extend(
    jsonschema.Draft7Validator,
    type_checker=jsonschema.Draft7Validator.TYPE_CHECKER.redefine(
        "integer", lambda checker, value: isinstance(value, int) and not isinstance(value, bool)
    ),
)


def _coerce(value, node: dict, schema: dict):
    """Type command-line text by the schema: `--config save_16bit=true clip_percentiles=[1,99]`
    arrives as strings ('true', ['1', '99']); YAML config files are typed already, but a
    whole-number float (`img_size: [64.0, 64.0]`) is taken where the schema wants an integer."""
    node = _resolve(schema, node)
    options = node.get("oneOf") or node.get("anyOf") or [node]
    if len(options) > 1 or options[0] is not node:
        for option in options:
            coerced = _coerce(value, option, schema)
            if coerced is not value:
                return coerced
        return value
    types = node.get("type", [])
    types = [types] if isinstance(types, str) else types
    if isinstance(value, list) and "array" in types and "items" in node:
        return [_coerce(item, node["items"], schema) for item in value]
    if isinstance(value, dict) and "object" in types:
        props, extra = node.get("properties", {}), node.get("additionalProperties")
        return {
            k: _coerce(v, props[k], schema) if k in props
            else _coerce(v, extra, schema) if isinstance(extra, dict) else v
            for k, v in value.items()
        }  # fmt: skip
    if isinstance(value, float) and "integer" in types:
        return _whole(value)
    if not isinstance(value, str):
        return value
    text = value.strip().lower()
    if "boolean" in types and text in ("true", "false"):
        return text == "true"
    if "null" in types and text in ("null", "none", "~"):
        return None
    for kind, parse in (("integer", _parse_integer), ("number", float)):
        if kind in types:
            try:
                return parse(text)
            except ValueError:
                pass
    return value


def _whole(number: float) -> int | float:
    """64.0 -> 64; other floats unchanged, for the schema to refuse as not an integer: 64.5,
    and those above 2**53, where a float may no longer be the integer that was written."""
    if number.is_integer() and abs(number) <= 2**53:
        return int(number)
    return number


def _parse_integer(text: str) -> int:
    """'64' or '64.0' -> 64; ValueError for '64.5'."""
    try:
        return int(text)
    except ValueError:
        whole = _whole(float(text))
        if isinstance(whole, int):
            return whole
        raise


def _resolve(schema: dict, prop: dict) -> dict:
    ref = prop.get("$ref")
    if not ref:
        return prop
    node = schema
    for part in ref.lstrip("#/").split("/"):
        node = node[part]
    return node


def _describe(schema: dict, error: jsonschema.ValidationError) -> str:
    key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    if error.validator == "additionalProperties":
        allowed = ", ".join(sorted(error.schema.get("properties", {}))) or "none"
        return f"  - config key '{key}': {error.message}. Allowed keys here: {allowed}"
    allowed = _resolve(schema, error.schema).get("description") or error.schema.get("description")
    if allowed is None and error.path:
        allowed = _allowed_for(schema, list(error.absolute_path))
    text = f"  - config key '{key}': value {error.instance!r} is not allowed ({error.message})"
    return text + (f". Allowed: {' '.join(allowed.split())}" if allowed else "")


def _allowed_for(schema: dict, path: list) -> str | None:
    """The description of the schema property at `path` (top-level or run key)."""
    props = schema["properties"]
    name = path[-1] if path[0] == "runs" and len(path) >= 3 else path[0]
    if isinstance(name, str) and name in props:
        return _resolve(schema, props[name]).get("description")
    return None


def check(config: dict, basedir: str | os.PathLike = ".") -> None:
    """The checks a schema cannot express; raise ConfigError naming the key."""
    import matplotlib  # noqa: PLC0415 - only here: colormap names are matplotlib's

    known_models = torchvision_classification_models()
    unknown = [m for m in config["models"] if m not in known_models]
    if unknown:
        raise ConfigError(
            f"config key 'models': unknown model(s) {', '.join(unknown)}. Allowed: torchvision "
            f"classification models: {', '.join(sorted(known_models))}"
        )
    weights = config["weights"]
    if weights not in ("imagenet", "random") and not (Path(basedir) / weights).is_file():
        raise ConfigError(
            f"config key 'weights': {weights!r} is neither imagenet, random, nor an existing "
            f"state-dict file (looked in {Path(basedir).resolve()})"
        )
    _check_checksums(config.get("weights_checksums"), Path(basedir))
    _check_mirror(config.get("weights_mirror"), config.get("allow_http_mirror"), Path(basedir))
    _check_config_names(config, basedir)
    for run, settings in resolve_runs(config).items():
        where = _run_prefix(config, run)
        if settings["cmap"] not in matplotlib.colormaps:
            raise ConfigError(
                f"config key '{where}cmap': unknown colormap {settings['cmap']!r}. Allowed: a "
                f"matplotlib colormap, e.g. {', '.join(sorted(matplotlib.colormaps)[:12])}, ..."
            )
        low_high = settings["clip_percentiles"]
        if low_high is not None and not low_high[0] < low_high[1]:
            raise ConfigError(
                f"config key '{where}clip_percentiles': {low_high} needs low < high "
                "(0 <= low < high <= 100)"
            )
        if settings["save_16bit"]:
            for other in ("overlay_on_image", "show_legend"):
                if settings[other]:
                    raise ConfigError(
                        f"config keys '{where}save_16bit' and '{where}{other}' exclude each "
                        "other: 16-bit frames are data, so they carry no overlay or legend. "
                        f"Set one of them to false."
                    )


def _run_prefix(config: dict, run: str) -> str:
    """Where a run's settings are in the config: 'runs.<run>.', or the top level."""
    return "" if run == DEFAULT_RUN and not config["runs"] else f"runs.{run}."


def _check_config_names(config: dict, basedir) -> None:
    """Models, runs and each run's video name files and folders (images: expand_images)."""
    models = [Name(model, f"models.{i}") for i, model in enumerate(config["models"])]
    check_names("model", models, basedir)
    check_names("run", [Name(run, f"runs.{run}") for run in config["runs"] or {}], basedir)
    for run, settings in resolve_runs(config).items():  # each video has its own run folder
        video = Name(settings["video_filename"], f"{_run_prefix(config, run)}video_filename")
        check_names("video", [video], basedir)


def _check_checksums(sums: str | None, basedir: Path) -> None:
    """A site checksum file must exist and be in sha256sum format."""
    from .weights import WeightsError, read_checksums  # noqa: PLC0415

    if sums is None:
        return
    if not (basedir / sums).is_file():
        raise ConfigError(
            f"config key 'weights_checksums': {sums!r} is not a file (looked in {basedir.resolve()})"
        )
    try:
        read_checksums(basedir / sums)
    except (WeightsError, OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"config key 'weights_checksums': {err}") from None


def _check_mirror(mirror: str | None, allow_http: bool, basedir: Path) -> None:
    """A mirror is an https:// or file:// URL or a local folder; http:// only when allowed. A URL
    with a user:password is refused: config values reach job parameters, logs and provenance."""
    from urllib.parse import urlsplit  # noqa: PLC0415

    from .weights import PASSWORD_ENV, USER_ENV, redact_url  # noqa: PLC0415

    if mirror is None:
        return
    try:
        parts = urlsplit(mirror)
    except ValueError as err:
        raise ConfigError(f"config key 'weights_mirror': not a valid URL ({err})") from None
    allowed = (
        "an https:// URL, a file:// URL or a local folder (http:// only with allow_http_mirror: "
        "true)"
    )
    if "://" not in mirror:
        if not (basedir / mirror).is_dir():
            raise ConfigError(
                f"config key 'weights_mirror': {mirror!r} is not a URL, nor an existing folder "
                f"(looked in {basedir.resolve()}). Allowed: {allowed}"
            )
    elif parts.username is not None or parts.password is not None:
        raise ConfigError(
            f"config key 'weights_mirror': {redact_url(mirror)} carries a user name or password, "
            "which would be copied into job parameters, logs and provenance.json. Remove it from "
            "the URL and put the credentials in ~/.netrc (or the file $NETRC names: 'machine "
            f"{parts.hostname} login <user> password <password>') or in {USER_ENV} and "
            f"{PASSWORD_ENV}."
        )
    elif parts.scheme == "http" and not allow_http:
        raise ConfigError(
            f"config key 'weights_mirror': {mirror!r} is plain http, which anyone on the way can "
            "read and alter. Use https://, or set allow_http_mirror: true to accept it (the "
            "checkpoint's SHA-256 is still checked)."
        )
    elif parts.scheme not in ("https", "http", "file"):
        raise ConfigError(
            f"config key 'weights_mirror': {redact_url(mirror)!r} has the scheme {parts.scheme!r}. "
            f"Allowed: {allowed}"
        )
    elif parts.scheme == "file" and not Path(parts.path).is_dir():
        raise ConfigError(
            f"config key 'weights_mirror': {mirror!r} is not an existing folder. Allowed: {allowed}"
        )
    elif parts.scheme != "file" and not parts.hostname:
        raise ConfigError(
            f"config key 'weights_mirror': {mirror!r} names no host. Allowed: {allowed}"
        )


def resolve_runs(config: dict) -> dict[str, dict]:
    """Each run's full rendering settings: the top-level keys, overridden by the run's own."""
    base = {key: config[key] for key in RUN_KEYS}
    runs = config.get("runs") or {DEFAULT_RUN: {}}
    return {name: {**base, **(overrides or {})} for name, overrides in runs.items()}


def extraction_settings(config: dict, model: str) -> dict:
    """Everything extraction's result depends on besides the image: the rule's settings, and
    part of the key that tells whether an activations folder is still current."""
    settings = {
        "model": model,
        "weights": config["weights"],
        "seed": config["seed"],
        "device": config["device"],
        "layers": layer_patterns(config),
        "max_filters_per_layer": config["max_filters_per_layer"],
        "img_size": list(img_size(config)),
        "construction": config["construction"],
        "preprocess": config["preprocess"],
    }
    if config["weights"] not in ("imagenet", "random"):
        st = os.stat(config["weights"])
        settings["weights_file"] = {"bytes": st.st_size, "mtime_ns": st.st_mtime_ns}
    return settings


def layer_patterns(config: dict) -> list[str] | None:
    """`layers` as a list of patterns, or None for every Conv2d."""
    layers = config["layers"]
    return [layers] if isinstance(layers, str) else layers


def img_size(config: dict) -> tuple[int, int]:
    """`img_size` as (width, height), PIL order."""
    size = config["img_size"]
    return (size, size) if isinstance(size, int) else (size[0], size[1])


def check_names(kind: str, names: list[Name], basedir: str | os.PathLike = ".") -> None:
    """Refuse names of one kind ("image", "run", "set", ...; see names.LEVELS) that meet the
    workflow's own files or folders, or each other, hold wildcard braces, or are too long
    for the file system under `basedir`/results."""
    found = name_problems(kind, names, name_max(basedir))
    if len(found) == 1:
        raise ConfigError(found[0])
    if found:
        raise ConfigError("invalid names:\n" + "\n".join(f"  - {p}" for p in found))


def expand_images(images: dict[str, str], basedir: str | os.PathLike = ".") -> dict[str, str]:
    """Map image name -> file. A folder or glob expands to `<name>_<file stem>` per image file.
    The names are checked (check_names): each becomes a folder under results/<model>/."""
    found = _image_files(images, Path(basedir))
    check_names("image", [name for name, _ in found], basedir)
    return {name.value: file for name, file in found}


def resolve_sets(config: dict, images: dict[str, str], basedir: str | os.PathLike = ".") -> dict[str, list[str]]:
    """`image_sets` as set name -> image names (in the order given, each once). A member is an
    image name, or a key of `images` (a file, folder or glob: all its images). Without the key
    (null), one set `all` holds every image; an empty mapping means no sets."""
    sets = config.get("image_sets")
    sets = {"all": list(images)} if sets is None else sets
    by_key = {key: [name.value for name, _ in _image_files({key: spec}, Path(basedir))]
              for key, spec in config["images"].items()}  # fmt: skip
    resolved = {}
    for set_name, members in sets.items():
        names: list[str] = []
        for member in members:
            found = [member] if member in images else by_key.get(member)
            if found is None:
                raise ConfigError(
                    f"config key 'image_sets.{set_name}': {member!r} is neither an image name nor "
                    f"a key of images. Allowed: {', '.join(sorted(set(images) | set(by_key)))}"
                )
            names += [name for name in found if name not in names]
        resolved[set_name] = names
    check_names("set", [Name(s, f"image_sets.{s}") for s in resolved], basedir)
    return resolved


def _image_files(images: dict[str, str], basedir: Path) -> list[tuple[Name, str]]:
    """(name, file) for each image, with the config key the name comes from."""
    expanded: list[tuple[Name, str]] = []
    for name, spec in images.items():
        path = basedir / spec
        if glob.has_magic(spec):
            files = sorted(p for p in map(Path, glob.glob(str(path))) if _is_image_file(p))
        elif path.is_dir():
            files = sorted(p for p in path.iterdir() if _is_image_file(p))
        else:
            if not path.exists():
                raise ConfigError(
                    f"config key 'images.{name}': file {spec!r} does not exist "
                    f"(paths are relative to {basedir.resolve()})"
                )
            expanded.append((Name(name, f"images.{name}"), spec))
            continue
        if not files:
            what = "matches no image file"
            if path.is_dir():
                what = "is a folder with no image file in it"
            raise ConfigError(
                f"config key 'images.{name}': {spec!r} {what} (looked for "
                f"{', '.join(IMAGE_SUFFIXES)}; sub-folders are not searched)"
            )
        for file in files:
            label = f"{name}_{_NAME.sub('-', file.stem)}"
            relative = os.path.relpath(file, basedir)
            expanded.append((Name(label, f"images.{name}", f"from {relative}"), relative))
    return expanded


def _is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def torchvision_classification_models() -> set[str]:
    """Names of torchvision's registered classification models, read without importing torch.

    Importing torchvision costs seconds; the registry is the set of top-level functions decorated
    with `@register_model` in `torchvision/models/*.py` (sub-packages hold detection, video, ...).
    """
    import importlib.util  # noqa: PLC0415

    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("torchvision is not installed: install the environment (see README)")
    models_dir = Path(next(iter(spec.submodule_search_locations))) / "models"
    pattern = re.compile(r"^@register_model\([^)]*\)\s*(?:^@.*\s*)*^def (\w+)\(", re.M)
    names = set()
    for file in models_dir.glob("*.py"):
        names.update(pattern.findall(file.read_text()))
    return names


def resolve_compare(
    config: dict, images: dict[str, str], basedir: str | os.PathLike = "."
) -> dict[str, dict]:
    """`compare` entries, checked: each side names an image under `images` (after folders and
    globs are expanded) and a torchvision classification model. Weights are global, so both sides
    always share them: two weight sets cannot be compared in one invocation."""
    pairs = config.get("compare") or {}
    check_names("compare", [Name(name, f"compare.{name}") for name in pairs], basedir)
    known_models = torchvision_classification_models() if pairs else set()
    for name, pair in pairs.items():
        for side in ("a", "b"):
            model, image = pair[side]["model"], pair[side]["image"]
            if image not in images:
                raise ConfigError(
                    f"config key 'compare.{name}.{side}.image': {image!r} is not an image name. "
                    f"Allowed: {', '.join(images)}"
                )
            if model not in known_models:
                raise ConfigError(
                    f"config key 'compare.{name}.{side}.model': unknown model {model!r}. Allowed: "
                    "a torchvision classification model"
                )
        if pair["a"] == pair["b"]:
            raise ConfigError(f"config key 'compare.{name}': a and b are the same model and image")
    return {name: {side: dict(pair[side]) for side in ("a", "b")} for name, pair in pairs.items()}
