"""The names the workflow gives its own files and folders, and the checks that keep the
user's names (images, runs, image sets, comparisons, videos) clear of them and of each other.

A user's name becomes a path component: image `cat` is `results/<model>/cat/` and
`logs/<rule>/<model>/cat.log`, run `dark` is `results/<model>/<image>/dark/`. So at each level
(LEVELS) a name must not be one of the workflow's own entries (`activations`), must not make
the same entry as another name, also on a file system that ignores case (macOS, Windows), must
not hold Snakemake's wildcard braces, and must fit the file system's name length once the
temporary suffixes of files.atomic_path / atomic_dir are added.

To add an entry the workflow writes, add it to `reserved` (or `prefixes`) of its level below;
a new folder that holds user names is a new Level. Standard library only: runs at start-up.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable


@dataclass(frozen=True)
class Level:
    """A folder in which one kind of user name becomes entries."""

    folder: str  # as messages show it, e.g. "results/<model>/<image>/"
    kind: str  # whose names: "model", "image", "run", "video", "set" or "compare"
    forms: tuple[str, ...] = ("{}",)  # the entries one name makes here; "{}.log": its log
    reserved: dict[str, str] = field(default_factory=dict)  # own entry -> what it holds
    prefixes: dict[str, str] = field(default_factory=dict)  # own prefix -> what it marks


# The run folder's own entries; a run's video (`video_filename`) lives beside them.
RUN_FILES = {
    "frames": "frame folders, one per layer",
    "frames.tsv": "frame index",
    "scales.tsv": "normalization scales",
    "equalization.npz": "histogram equalization tables",
    "activation_stats.txt": "filter statistics",
    "activation_stats.tsv": "filter statistics table",
    "top_filters.tsv": "most active filters",
    "sheets": "contact sheets",
    "preview.webp": "browser preview",
    "MANIFEST.sha256": "checksum manifest",
    "provenance.json": "provenance record",
}

LEVELS = (
    Level("results/", "model", reserved={"report": "HTML pages", "compare": "comparisons"}),
    Level(
        "results/<model>/",
        "image",
        prefixes={"_": "folders of several images (e.g. _sets/, the image sets)"},
    ),
    Level(
        "results/<model>/<image>/",
        "run",
        reserved={
            "activations": "extracted activations",
            "layer_stats.tsv": "layer statistics",
            "layer_stats.png": "layer statistics plot",
        },
    ),
    Level("results/<model>/<image>/<run>/", "video", reserved=RUN_FILES),
    Level("results/<model>/_sets/", "set"),
    Level("results/report/<model>/", "image"),
    Level("results/compare/", "compare"),
    Level("logs/<rule>/<model>/", "image", forms=("{}", "{}.log")),
    Level("logs/<rule>/<model>/<image>/", "run", forms=("{}", "{}.log")),
    Level("logs/<rule>/<model>/_sets/", "set", forms=("{}", "{}.log")),
    Level("logs/<rule>/", "model", forms=("{}", "{}.log")),
    Level("logs/<rule>/", "compare", forms=("{}.log",)),
    Level("benchmarks/<rule>/<model>/", "image", forms=("{}", "{}.tsv")),
    Level("benchmarks/<rule>/<model>/<image>/", "run", forms=("{}", "{}.tsv")),
)

# At every level: the temporary names beside an entry being written (files.atomic_path,
# files.atomic_dir). They start with '.', so no user name may.
TEMPORARY_FORMS = (".{}.01234567.tmp", ".{}.partial")
DEFAULT_NAME_MAX = 255  # bytes; where the file system cannot be asked
ROOTS = ("results", "logs", "benchmarks")
_CASE_NOTE = " on a file system that ignores case, as on macOS and Windows"


@dataclass(frozen=True)
class Name:
    """A user's name and where the configuration gives it."""

    value: str
    key: str  # the config key, e.g. "images.shots" or "runs.dark"
    origin: str = ""  # how the key makes it, e.g. "from shots/cat.png"

    def describe(self, kind: str) -> str:
        if self.origin:
            return f"config key '{self.key}' -> {kind} name '{self.value}' ({self.origin})"
        if self.key.endswith(f".{self.value}"):
            return f"config key '{self.key}'"
        return f"config key '{self.key}' ({kind} name '{self.value}')"


def name_max(basedir: str | os.PathLike = ".") -> int:
    """The longest file name, in bytes, the file systems of results/, logs/ and benchmarks/
    take (NAME_MAX of each, or of the nearest folder above it that exists)."""
    limits = []
    for root in ROOTS:
        folder = (Path(basedir) / root).resolve()
        while not folder.exists():
            folder = folder.parent
        try:
            limits.append(os.pathconf(folder, "PC_NAME_MAX"))
        except (AttributeError, OSError, ValueError):  # no pathconf (Windows), or no limit
            pass
    return min(limits, default=DEFAULT_NAME_MAX)


def problems(kind: str, names: Iterable[Name], limit: int = DEFAULT_NAME_MAX) -> list[str]:
    """Every problem of `names`, one message each, naming the key, what it meets and the
    fix; [] when they are fine. The names are of one `kind` and share their folders (the
    runs of one image, not the videos of different runs); `limit` is name_max()."""
    names = list(names)
    levels = [level for level in LEVELS if level.kind == kind]
    if not levels:
        raise ValueError(f"no level holds {kind} names; known: {sorted(_kinds())}")
    found = []
    for name in names:
        found += _braces(kind, name) + _hidden(kind, name) + _reserved(kind, name, levels)
        found += _too_long(kind, name, levels, limit)
    found += _collisions(kind, names, levels)
    return list(dict.fromkeys(found))


def _kinds() -> set[str]:
    return {level.kind for level in LEVELS}


def _braces(kind: str, name: Name) -> list[str]:
    if "{" not in name.value and "}" not in name.value:
        return []
    return [
        f"{name.describe(kind)}: the name holds '{{' or '}}', which Snakemake reads as a "
        "wildcard in a path; use letters, digits, '.', '_' and '-'"
    ]


def _hidden(kind: str, name: Name) -> list[str]:
    if not name.value.startswith("."):
        return []
    return [
        f"{name.describe(kind)}: a name that starts with '.' is hidden, like the workflow's "
        "temporary files (.<name>.<8 hex>.tmp, .<name>.partial); choose a name that starts "
        "with a letter or digit"
    ]


def _reserved(kind: str, name: Name, levels: list[Level]) -> list[str]:
    """The name meets one of the workflow's own entries or prefixes at its level."""
    found = []
    for level in levels:
        own = {entry.casefold(): (entry, what) for entry, what in level.reserved.items()}
        for form in level.forms:
            entry = form.format(name.value)
            if entry.casefold() in own:
                mine, what = own[entry.casefold()]
                case = f" ({mine}){_CASE_NOTE}" if mine != entry else ""
                found.append(
                    f"{name.describe(kind)}: {level.folder}{entry} is the workflow's own "
                    f"{what}{case}; choose another {kind} name"
                )
            for prefix, what in level.prefixes.items():
                if entry.startswith(prefix):
                    found.append(
                        f"{name.describe(kind)}: a name in {level.folder} that starts with "
                        f"'{prefix}' is one of the workflow's {what}; choose a name that "
                        "starts with a letter or digit"
                    )
    return found


def _too_long(kind: str, name: Name, levels: list[Level], limit: int) -> list[str]:
    """The longest file name the name makes, temporary suffix included, over `limit`."""
    longest = max(
        (
            (len(temp.format(form.format(name.value)).encode()), level, form, temp)
            for level in levels
            for form in level.forms
            for temp in TEMPORARY_FORMS
        ),
        key=lambda candidate: candidate[0],
    )
    size, level, form, temp = longest
    if size <= limit:
        return []
    overhead = size - len(name.value.encode())
    sample = temp.format(form.format("<name>")).replace("01234567", "<8 hex>")
    most = limit - overhead
    fix = f"shorten it to at most {most} bytes"
    if name.origin:
        fix = f"rename the file or shorten the key, so that the name has at most {most} bytes"
    return [
        f"{name.describe(kind)}: the name is {len(name.value.encode())} bytes long, and the "
        f"longest file name it makes, '{sample}' in {level.folder}, would be {size} bytes, "
        f"over the file system's limit of {limit} bytes; {fix}"
    ]


def _collisions(kind: str, names: list[Name], levels: list[Level]) -> list[str]:
    """Two names that make the same entry at a level, also when only the case differs."""
    found, seen_pairs = [], set()
    for level in levels:
        first: dict[str, tuple[Name, str]] = {}
        for name in names:
            for form in level.forms:
                entry = form.format(name.value)
                other, other_entry = first.setdefault(entry.casefold(), (name, entry))
                pair = frozenset((other, name))
                if other == name or pair in seen_pairs:
                    continue
                seen_pairs.add(pair)
                case = _CASE_NOTE if other_entry != entry else ""
                found.append(
                    f"{other.describe(kind)} and {name.describe(kind)} both make "
                    f"{level.folder}{other_entry}{case}; rename one of them"
                )
    return found
