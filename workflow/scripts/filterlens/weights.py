"""Download, verify and load torchvision checkpoints.

A download streams into a temporary file beside its target while hashing; only a file whose SHA-256
matches is renamed into place, so a mismatch, a truncated transfer or a killed job leaves nothing a
re-run would trust. The full SHA-256 is checked where the project knows it (`KNOWN_HASHES_FILE`),
else torchvision's hash prefix in the file name. A verified file is never downloaded again.
"""

from __future__ import annotations

import hashlib
import logging
import re
import urllib.error
import urllib.request
from pathlib import Path

from .files import atomic_path, sha256_file, write_text

log = logging.getLogger(__name__)

TORCHVISION_BASE = "https://download.pytorch.org/models/"
KNOWN_HASHES_FILE = Path(__file__).resolve().parents[2] / "checksums" / "weights.sha256"
_PREFIX = re.compile(r"-([a-f0-9]{6,64})\.[A-Za-z0-9]+$")
_SUM_LINE = re.compile(r"^([0-9a-fA-F]{64})\s+\*?(\S.*?)\s*$")


class WeightsError(RuntimeError):
    """Weights that cannot be had or cannot be trusted; the message says what to do."""


def known_hashes(path: str | Path = KNOWN_HASHES_FILE) -> dict[str, str]:
    """file name -> full SHA-256, from a sha256sum-style file; refuse lines of any other form."""
    hashes = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if line.strip() and not line.startswith("#"):
            match = _SUM_LINE.match(line.strip())
            if not match:
                raise WeightsError(
                    f"{path} line {number} is not '<64 hex digits>  <file name>' (sha256sum "
                    f"format): {line.strip()[:120]!r}"
                )
            hashes[match.group(2)] = match.group(1).lower()
    return hashes


def expected_hash(filename: str, hashes: dict[str, str]) -> tuple[str, str]:
    """('full', sha256) where known, else ('prefix', torchvision's prefix in the file name)."""
    if filename in hashes:
        return "full", hashes[filename]
    match = _PREFIX.search(filename)
    if not match:
        raise WeightsError(f"no known SHA-256 for {filename} and no hash prefix in its name")
    return "prefix", match.group(1)


def matches(digest: str, expected: tuple[str, str]) -> bool:
    kind, value = expected
    return digest == value if kind == "full" else digest.startswith(value)


def source_url(url: str, mirror: str | None) -> str:
    """torchvision's URL, or the same file name under a site mirror."""
    if not mirror:
        return url
    return mirror.rstrip("/") + "/" + url.rsplit("/", 1)[-1]


def fetch(url: str, target: Path, expected: tuple[str, str], timeout: float = 60) -> str:
    """Make `target` a verified copy of `url`; return its SHA-256. Never re-downloads a good file."""
    target = Path(target)
    if target.exists():
        digest = sha256_file(target)
        if matches(digest, expected):
            log.info("%s already present and verified (sha256 %s)", target, digest)
            return digest
        raise WeightsError(
            f"{target} exists but its SHA-256 {digest} does not match the expected "
            f"{expected[0]} hash {expected[1]}. It is left untouched: delete it to download again."
        )
    log.info("downloading %s -> %s", url, target)
    with atomic_path(target) as tmp:
        digest = _download(url, tmp, timeout, target)
        if not matches(digest, expected):
            raise WeightsError(
                f"checksum mismatch for {url}: got sha256 {digest}, expected {expected[0]} "
                f"{expected[1]}. Nothing was kept. A proxy or mirror may have altered the file."
            )
    log.info("verified sha256 %s", digest)
    return digest


def _download(url: str, tmp: Path, timeout: float, target: Path) -> str:
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            done, next_report = 0, 0.1
            while block := response.read(1 << 20):
                out.write(block)
                digest.update(block)
                done += len(block)
                if total and done / total >= next_report:
                    log.info("  %3.0f%% of %.1f MB", 100 * done / total, total / 1e6)
                    next_report += 0.1
        if total and done != total:
            raise WeightsError(f"download of {url} stopped after {done} of {total} bytes")
    except (urllib.error.URLError, OSError, TimeoutError) as err:
        reason = getattr(err, "reason", err)
        raise WeightsError(
            f"could not download {url} ({reason}). Offline (an HPC compute node, say)? Download "
            f"the file on a machine with internet, or copy it from ~/.cache/torch/hub/checkpoints/"
            f"{target.name} if torchvision was used there, and place it at {target}; it is "
            "verified before use. Or run with weights=random."
        ) from None
    return digest.hexdigest()


def write_record(record: Path, digest: str, filename: str) -> None:
    """The verified hash, in sha256sum format (checkable with `sha256sum -c` in its folder)."""
    write_text(record, f"{digest}  {filename}\n")


def read_record(record: Path) -> tuple[str, Path]:
    digest, name = Path(record).read_text().split(maxsplit=1)
    return digest, Path(record).parent / name.strip()


def load_state_dict(path: Path, expected_sha256: str | None = None) -> dict:
    """Load a checkpoint as plain tensors: `weights_only=True` never runs code from the file."""
    import pickle  # noqa: PLC0415

    import torch  # noqa: PLC0415 - only the extraction job pays for torch

    if expected_sha256 is not None:
        digest = sha256_file(path)
        if digest != expected_sha256:
            raise WeightsError(
                f"{path} changed since it was verified (sha256 {digest}, recorded "
                f"{expected_sha256}). Delete it and its .sha256 record to download it again."
            )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise WeightsError(
            f"refused to load {path}: it is not a plain state dict of tensors (it may carry code; "
            f"weights_only loading rejected it: {str(err).splitlines()[0][:200]})"
        ) from None
    except (RuntimeError, EOFError, ValueError) as err:
        raise WeightsError(f"{path} is not a readable PyTorch checkpoint: {err}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise WeightsError(f"{path} holds a {type(state).__name__}, not a state dict")
    return state
