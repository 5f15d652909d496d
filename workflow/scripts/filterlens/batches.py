"""Which images extraction must (re)make, in batches that one job runs through one loaded model.

An image's batch is fixed by its name: a hash of the name picks one of `count` buckets, and
`count` is the smallest power of two that keeps the average bucket at most `batch_size` images.
Adding an image to a set changes no other image's bucket; when the set outgrows its buckets and
`count` doubles, every bucket splits in two, so images never move between the halves.

Only images whose activations folder is missing or no longer what the configuration would make
(`activations.state`) are put into a batch job. A folder that is current is an input of the later
steps like any source file: adding an image to a batch, or a new batch size, re-makes nothing of
the other images.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from importlib import metadata
from typing import Callable, Iterable, Mapping

SOFTWARE = ("torch", "torchvision", "numpy", "pillow")


@dataclass(frozen=True)
class Batch:
    """One extraction job: the images of one bucket of one model that need extraction."""

    model: str
    index: int  # 0 .. count - 1
    count: int
    images: tuple[str, ...]  # image names, sorted

    @property
    def name(self) -> str:
        """'3-of-8': the bucket, in logs and benchmark file names."""
        return f"{self.index + 1}-of-{self.count}"

    @property
    def rule(self) -> str:
        """The job's rule name (rules are made per batch, see workflow/rules/extract.smk)."""
        return f"extract_activations_{self.model}_{self.index + 1}_of_{self.count}"


def bucket_count(images: int, batch_size: int) -> int:
    """The smallest power of two with images / count <= batch_size (at least 1)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    return 1 << max(0, math.ceil(math.log2(max(1, images) / batch_size)))


def bucket_of(name: str, count: int) -> int:
    """The bucket of image `name` among `count`: the leading bits of the SHA-256 of the name."""
    head = int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big")
    return (head * count) >> 64


def extraction_key(settings: Mapping, code: str) -> str:
    """Digest of what decides an activations folder besides its source image: the extraction
    settings, the digest of the code that extracts, and the versions of the software it runs."""
    versions = {name: _version(name) for name in SOFTWARE}
    text = json.dumps({"settings": settings, "code": code, "software": versions}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def plan(
    model: str,
    images: Iterable[str],
    batch_size: int,
    stale: Callable[[str], str | None],
) -> tuple[list[Batch], dict[str, str]]:
    """The batches of `model` with work to do, and why each image in them needs extraction.

    `stale(image)` says why an image's activations must be made (None: they are current). Buckets
    are counted over all images, so an image's bucket does not depend on which others are stale.
    """
    names = sorted(images)
    count = bucket_count(len(names), batch_size)
    reasons = {name: why for name in names if (why := stale(name)) is not None}
    members: dict[int, list[str]] = {}
    for name in reasons:
        members.setdefault(bucket_of(name, count), []).append(name)
    batches = [Batch(model, index, count, tuple(members[index])) for index in sorted(members)]
    return batches, reasons
