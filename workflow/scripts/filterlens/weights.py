"""Download, verify and load torchvision checkpoints.

A download streams into a locked temporary file beside its target while hashing, within an overall
deadline and a size cap; only a file whose SHA-256 matches is renamed into place, so a mismatch, a
truncated or oversized transfer or a killed job leaves nothing a re-run would trust, and the next
download removes what a killed one left. The full SHA-256 is checked where a checksums file knows it
(`KNOWN_HASHES_FILE`, or the site's `weights_checksums`); else only torchvision's hash prefix in the
file name, which a forged file can be made to match in minutes: such a file is recorded as
prefix-only, and `require_full_sha256` refuses it. A verified file is never downloaded again.

The record fetch_weights writes beside the checkpoint (`WeightsRecord`) says how it was verified, and
extraction copies that into extraction.json. Loading refuses a zip that would unpack to far more than
its size, and never runs code from the file (`weights_only=True`).
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import http.client
import logging
import netrc
import os
import re
import time
import urllib.error
import urllib.request
import zipfile
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator, Mapping
from urllib.parse import urlsplit, urlunsplit

from .files import atomic_path, sha256_file, write_text

log = logging.getLogger(__name__)

TORCHVISION_BASE = "https://download.pytorch.org/models/"
KNOWN_HASHES_FILE = Path(__file__).resolve().parents[2] / "checksums" / "weights.sha256"
FULL, PREFIX_ONLY, LOCAL_FILE = "full", "prefix-only", "local-file"
# Defaults of the config keys weights_download_deadline_s and weights_max_bytes (the schema states
# the same numbers; a test keeps them equal). torchvision's largest classification checkpoints
# (the SWAG ViT-H and RegNet-Y-128GF) are about 2.6 GB.
DEFAULT_DEADLINE_S = 3600.0
DEFAULT_MAX_BYTES = 4_000_000_000
READ_TIMEOUT_S = 60.0
USER_ENV, PASSWORD_ENV = "FILTERLENS_MIRROR_USER", "FILTERLENS_MIRROR_PASSWORD"
# torch.save stores tensors uncompressed, so a checkpoint unpacks to about its own size; this much
# more (plus a little for small files) is allowed before a zip counts as a bomb.
MAX_INFLATION = 4
INFLATION_SLACK = 1 << 20

_PREFIX = re.compile(r"-([a-f0-9]{6,64})\.[A-Za-z0-9]+$")
_SUM_LINE = re.compile(r"^([0-9a-fA-F]{64})\s+\*?(\S.*?)\s*$")
_SIZE_COMMENT = re.compile(r"^#\s*size\b")
_SIZE_LINE = re.compile(r"^#\s*size\s+(\d+)\s+(\S.*?)\s*$")
_RECORD_FIELD = re.compile(r"^#\s*(\w+):\s*(.*?)\s*$")


class WeightsError(RuntimeError):
    """Weights that cannot be had or cannot be trusted; the message says what to do."""


# --- what a checkpoint file must be -----------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """A checkpoint's expected SHA-256 (the full digest, or only a prefix) and, if known, its size."""

    verification: str  # FULL or PREFIX_ONLY
    sha256: str  # the full digest, or the prefix
    size: int | None = None

    def matches(self, digest: str) -> bool:
        if self.verification == FULL:
            return digest == self.sha256
        return digest.startswith(self.sha256)

    def __str__(self) -> str:
        return f"{self.verification} {self.sha256}"


def read_checksums(path: str | os.PathLike = KNOWN_HASHES_FILE) -> dict[str, Expected]:
    """file name -> Expected, from a sha256sum-format file; refuse lines of any other form.

    A comment `# size <bytes>  <file name>` records a file's size: `sha256sum -c` skips it, so the
    file stays checkable as it is.
    """
    hashes, sizes = {}, {}
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        text = line.strip()
        if _SIZE_COMMENT.match(text):
            match = _SIZE_LINE.match(text)
            if not match:
                raise WeightsError(
                    f"{path} line {number} is not '# size <bytes>  <file name>': {text[:120]!r}"
                )
            sizes[match.group(2)] = int(match.group(1))
        elif text and not text.startswith("#"):
            match = _SUM_LINE.match(text)
            if not match:
                raise WeightsError(
                    f"{path} line {number} is not '<64 hex digits>  <file name>' (sha256sum "
                    f"format): {text[:120]!r}"
                )
            hashes[match.group(2)] = match.group(1).lower()
    stray = sorted(set(sizes) - set(hashes))
    if stray:
        raise WeightsError(f"{path} gives a size but no SHA-256 for {', '.join(stray)}")
    return {name: Expected(FULL, digest, sizes.get(name)) for name, digest in hashes.items()}


def expected_for(
    filename: str, known: Mapping[str, Expected], require_full: bool = False
) -> Expected:
    """The full SHA-256 where `known` has it, else torchvision's prefix in the name (prefix-only),
    which `require_full` (config key require_full_sha256) refuses."""
    if filename in known:
        return known[filename]
    match = _PREFIX.search(filename)
    if not match:
        raise WeightsError(
            f"no known SHA-256 for {filename} and no hash prefix in its name: add its full SHA-256 "
            "to a weights_checksums file"
        )
    prefix = match.group(1)
    if require_full:
        raise WeightsError(
            f"refused {filename}: only the {4 * len(prefix)}-bit hash prefix {prefix} in its name is "
            "known, not its full SHA-256, and a file matching so short a prefix can be forged in "
            "minutes (require_full_sha256 is true). Add the file's full SHA-256 to a "
            f"weights_checksums file (a line '<64 hex digits>  {filename}'), or set "
            "require_full_sha256: false to accept prefix-only verification."
        )
    return Expected(PREFIX_ONLY, prefix)


# --- where a checkpoint comes from -----------------------------------------------------------


def source_url(url: str, mirror: str | None) -> str:
    """torchvision's URL, or the same file name under a site mirror (a URL or a local folder)."""
    if not mirror:
        return url
    name = url.rsplit("/", 1)[-1]
    if "://" in mirror:
        return mirror.rstrip("/") + "/" + name
    return (Path(mirror).resolve() / name).as_uri()


def redact_url(url: str) -> str:
    """`url` without any user:password part, for logs and messages."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True)
class Credentials:
    """A user and password for a mirror; the password never appears in its repr."""

    user: str
    password: str = field(repr=False)
    source: str = ""  # where they were read from, for the log


def mirror_credentials(
    mirror: str | None, environ: Mapping[str, str] = os.environ
) -> Credentials | None:
    """User and password for an http(s) mirror, never from its URL: FILTERLENS_MIRROR_USER and
    FILTERLENS_MIRROR_PASSWORD, else the entry for its host in the netrc file ($NETRC, ~/.netrc)."""
    if not mirror or urlsplit(mirror).scheme not in ("http", "https"):
        return None
    user, password = environ.get(USER_ENV), environ.get(PASSWORD_ENV)
    if user or password:
        if not (user and password):
            missing = PASSWORD_ENV if user else USER_ENV
            raise WeightsError(f"{missing} is not set: set both {USER_ENV} and {PASSWORD_ENV}")
        return Credentials(user, password, f"${USER_ENV} and ${PASSWORD_ENV}")
    return _netrc_credentials(urlsplit(mirror).hostname or "", environ.get("NETRC"))


def _netrc_credentials(host: str, path: str | None) -> Credentials | None:
    where = path or str(Path("~/.netrc").expanduser())
    if not Path(where).is_file():
        return None
    try:
        # Without a path, netrc checks that ~/.netrc is private (as ftp and curl expect).
        entry = netrc.netrc(path).authenticators(host)
    except netrc.NetrcParseError as err:
        if err.msg.startswith("~/.netrc"):  # its owner or permissions: a message without secrets
            raise WeightsError(f"{where}: {err.msg}") from None
        # Any other message may quote a token of the file, a password perhaps: only say where.
        raise WeightsError(f"{where} line {err.lineno} is not valid netrc: fix it") from None
    except OSError as err:
        raise WeightsError(f"cannot read {where}: {err.strerror}") from None
    if not entry or not entry[0] or not entry[2]:
        return None
    return Credentials(entry[0], entry[2], where)


# --- downloading -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """Bounds of one download: the overall deadline and the most bytes it may bring where neither
    the checksums file records the size nor the server announces one (config keys
    weights_download_deadline_s and weights_max_bytes)."""

    deadline_s: float = DEFAULT_DEADLINE_S
    max_bytes: int = DEFAULT_MAX_BYTES
    read_timeout_s: float = READ_TIMEOUT_S  # one read waits this long at most


def fetch(
    url: str,
    target: Path,
    expected: Expected,
    limits: Limits = Limits(),
    credentials: Credentials | None = None,
) -> str:
    """Make `target` a verified copy of `url`; return its SHA-256. Never re-downloads a good file."""
    target = Path(target)
    remove_dead_temps(target)
    if target.exists():
        digest = sha256_file(target)
        if expected.matches(digest):
            log.info("%s already present and verified (sha256 %s)", target, digest)
            _warn_if_prefix_only(target.name, expected)
            return digest
        raise WeightsError(
            f"{target} exists but its SHA-256 {digest} does not match the expected {expected} "
            "hash. It is left untouched: delete it to download again."
        )
    shown = redact_url(url)
    log.info("downloading %s -> %s", shown, target)
    if credentials:
        log.info("authenticating as %s (from %s)", credentials.user, credentials.source)
    with ExitStack() as lock:
        with atomic_path(target) as tmp:
            # Locked until after the rename: a download running beside us leaves it alone.
            out = lock.enter_context(_locked(tmp))
            digest = _download(url, out, expected, limits, credentials, target)
            if not expected.matches(digest):
                raise WeightsError(
                    f"checksum mismatch for {shown}: got sha256 {digest}, expected {expected}. "
                    "Nothing was kept. A proxy or mirror may have altered the file."
                )
    log.info("verified sha256 %s (%s)", digest, expected.verification)
    _warn_if_prefix_only(target.name, expected)
    return digest


def _warn_if_prefix_only(name: str, expected: Expected) -> None:
    if expected.verification == PREFIX_ONLY:
        log.warning(
            "%s is verified by prefix only: its full SHA-256 is not known, only the %d-bit prefix "
            "%s in its name, which a forged file can match. extraction.json and provenance.json "
            "record this; add its full SHA-256 to a weights_checksums file, or set "
            "require_full_sha256: true to refuse such files.",
            name, 4 * len(expected.sha256), expected.sha256,
        )  # fmt: skip


def remove_dead_temps(target: Path) -> list[Path]:
    """Remove the temporary files that killed or failed downloads of `target` left beside it.

    They are files.atomic_path's `.<name>.<hex>.tmp`; a download still running holds an flock on
    its own (see `_locked`), so only unlocked ones are removed.
    """
    removed = []
    for tmp in sorted(Path(target).parent.glob(f".{glob.escape(Path(target).name)}.*.tmp")):
        try:
            fh = open(tmp, "rb")
        except FileNotFoundError:  # finished or removed meanwhile
            continue
        with fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.info("%s belongs to a download still running: left alone", tmp)
                continue
            if _same_file(fh, tmp):
                tmp.unlink()
                removed.append(tmp)
    if removed:
        log.info("removed %s, left by an unfinished download", ", ".join(p.name for p in removed))
    return removed


@contextmanager
def _locked(tmp: Path) -> Iterator[BinaryIO]:
    """`tmp` opened for writing under an exclusive flock, held until it is closed."""
    for _ in range(10):
        # "ab" creates it again should remove_dead_temps have taken it before we held the lock.
        fh = open(tmp, "ab")
        fcntl.flock(fh, fcntl.LOCK_EX)
        if _same_file(fh, tmp):
            break
        fh.close()
    else:
        raise WeightsError(f"could not lock the temporary file {tmp}")
    with fh:
        yield fh


def _same_file(fh: BinaryIO, path: Path) -> bool:
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fh.fileno())
    return (held.st_dev, held.st_ino) == (on_disk.st_dev, on_disk.st_ino)


def _download(url, out, expected, limits, credentials, target) -> str:
    shown = redact_url(url)
    deadline = time.monotonic() + limits.deadline_s
    digest = hashlib.sha256()
    try:
        timeout = min(limits.read_timeout_s, limits.deadline_s)
        with _open(url, credentials, timeout) as response:
            announced = _announced_length(response)
            cap, why = _size_cap(shown, announced, expected, limits)
            done, next_report = 0, 0.1
            # read1: at most one read of the socket, so that the deadline is checked between reads
            # even when a server trickles bytes.
            while block := response.read1(1 << 20):
                done += len(block)
                if done > cap:
                    raise WeightsError(
                        f"{shown} sent more than {cap:,} bytes ({why}): cut off, nothing was kept"
                    )
                out.write(block)
                digest.update(block)
                if time.monotonic() > deadline:
                    raise WeightsError(
                        f"download of {shown} did not finish within weights_download_deadline_s "
                        f"({limits.deadline_s:g} s; {done:,} of {announced or '?'} bytes came): "
                        "nothing was kept. On a slow link, raise weights_download_deadline_s."
                    )
                if announced and done / announced >= next_report:
                    log.info("  %3.0f%% of %.1f MB", 100 * done / announced, announced / 1e6)
                    next_report += 0.1
        if announced and done != announced:
            raise WeightsError(f"download of {shown} stopped after {done} of {announced} bytes")
    except urllib.error.HTTPError as err:
        raise WeightsError(_http_refusal(shown, err, credentials)) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        reason = getattr(err, "reason", err)
        raise WeightsError(
            f"could not download {shown} ({reason}). Offline (an HPC compute node, say)? Download "
            f"the file on a machine with internet, or copy it from ~/.cache/torch/hub/checkpoints/"
            f"{target.name} if torchvision was used there, and place it at {target}; it is "
            "verified before use. Or run without pretrained weights: --config weights=random"
        ) from None
    return digest.hexdigest()


def _open(url: str, credentials: Credentials | None, timeout: float):
    handlers = []
    if credentials:
        # Sent only to URLs under `url`, and never along a redirect to another host.
        manager = urllib.request.HTTPPasswordMgrWithPriorAuth()
        manager.add_password(
            None, url, credentials.user, credentials.password, is_authenticated=True
        )
        handlers.append(urllib.request.HTTPBasicAuthHandler(manager))
    return urllib.request.build_opener(*handlers).open(url, timeout=timeout)


def _announced_length(response) -> int | None:
    try:
        length = int(response.headers.get("Content-Length") or -1)
    except ValueError:
        return None
    return length if length >= 0 else None


def _size_cap(shown: str, announced: int | None, expected: Expected, limits: Limits):
    """(most bytes to accept, why): the recorded size, else the announced length, else the cap."""
    if expected.size is not None:
        if announced is not None and announced != expected.size:
            raise WeightsError(
                f"{shown} announces {announced:,} bytes but the checksums file records "
                f"{expected.size:,} for this file: refused before reading, nothing was kept"
            )
        return expected.size, "the size the checksums file records"
    if announced is not None:
        if announced > limits.max_bytes:
            raise WeightsError(
                f"{shown} announces {announced:,} bytes, more than weights_max_bytes "
                f"({limits.max_bytes:,}): refused before reading, nothing was kept. If the "
                "checkpoint really is that large, raise weights_max_bytes."
            )
        return announced, "the length it announced"
    return limits.max_bytes, "weights_max_bytes"


def _http_refusal(shown: str, err: urllib.error.HTTPError, credentials: Credentials | None) -> str:
    text = f"could not download {shown}: the server answered HTTP {err.code} {err.reason}"
    if err.code in (401, 403):
        given = "no credentials were given"
        if credentials:
            given = f"the credentials from {credentials.source} were refused"
        text += (
            f" ({given}). Put the mirror's user and password in ~/.netrc (or the file $NETRC "
            f"names) or in {USER_ENV} and {PASSWORD_ENV}, never in weights_mirror"
        )
    return text


# --- the record fetch_weights writes and extraction reads -------------------------------------


@dataclass(frozen=True)
class WeightsRecord:
    """Which weights file a model uses and how it was verified."""

    sha256: str
    path: Path  # the checkpoint file
    verification: str  # FULL, PREFIX_ONLY or LOCAL_FILE (a file the config names: not verified)
    kind: str  # "imagenet: <torchvision weights enum>", or the configured file

    def extraction_info(self) -> dict:
        """What extraction.json (and from it provenance.json) stores under `weights`."""
        return {
            "kind": self.kind, "file": self.path.name, "sha256": self.sha256,
            "verification": self.verification,
        }  # fmt: skip

    def describe(self) -> str:
        return f"{self.kind} ({self.path.name}, sha256 {self.sha256}, {self.verification})"


def write_record(record: Path, weights: WeightsRecord) -> None:
    """The record beside the checkpoint: comment lines, then the sha256sum line, so that
    `sha256sum -c` checks the checkpoint from the record's folder."""
    write_text(
        record,
        f"# kind: {weights.kind}\n# verification: {weights.verification}\n"
        f"{weights.sha256}  {weights.path.name}\n",
    )


def read_record(record: Path) -> WeightsRecord:
    record = Path(record)
    fields, sums = {}, []
    for line in record.read_text().splitlines():
        if match := _RECORD_FIELD.match(line):
            fields[match.group(1)] = match.group(2)
        elif match := _SUM_LINE.match(line):
            sums.append((match.group(1).lower(), match.group(2)))
    verification = fields.get("verification")
    if len(sums) != 1 or verification not in (FULL, PREFIX_ONLY) or "kind" not in fields:
        raise WeightsError(
            f"{record} is not a weights record of this version (one sha256sum line, a kind and a "
            "verification of full or prefix-only): delete it to fetch and verify the weights again"
        )
    [(digest, name)] = sums
    return WeightsRecord(digest, record.parent / name, verification, fields["kind"])


def local_record(path: Path) -> WeightsRecord:
    """The record of a state-dict file the configuration names (weights: path.pth)."""
    path = Path(path)
    return WeightsRecord(sha256_file(path), path, LOCAL_FILE, str(path))


# --- loading ---------------------------------------------------------------------------------


def load_state_dict(
    path: Path, expected_sha256: str | None = None, max_bytes: int = DEFAULT_MAX_BYTES
) -> dict:
    """Load a checkpoint as plain tensors: `weights_only=True` never runs code from the file, and a
    zip that would unpack to far more than its size (or than `max_bytes`) is refused unopened."""
    import pickle  # noqa: PLC0415

    import torch  # noqa: PLC0415 - only the extraction job pays for torch

    if expected_sha256 is not None:
        digest = sha256_file(path)
        if digest != expected_sha256:
            raise WeightsError(
                f"{path} changed since it was verified (sha256 {digest}, recorded "
                f"{expected_sha256}). Delete it and its .sha256 record to download it again."
            )
    check_unpacked_size(path, max_bytes)
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


def check_unpacked_size(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
    """Refuse a zip checkpoint whose central directory declares more unpacked bytes than allowed.

    torch.load reads a file that starts like a zip as one, allocating each entry's declared size;
    older checkpoints (torch.save before 1.6, such as alexnet-owt-7be5be79.pth) are plain pickles
    and are not checked here.
    """
    with open(path, "rb") as fh:
        if fh.read(4) != b"PK\x03\x04":
            return
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError) as err:
        raise WeightsError(f"{path} is not a readable PyTorch checkpoint: {err}") from None
    size = Path(path).stat().st_size
    unpacked = sum(entry.file_size for entry in entries)
    packed = sum(1 for entry in entries if entry.compress_type != zipfile.ZIP_STORED)
    if unpacked > max_bytes:
        why = f"more than weights_max_bytes ({max_bytes:,})"
    elif unpacked > MAX_INFLATION * size + INFLATION_SLACK:
        why = (
            f"{unpacked / size:,.0f} times its size ({packed} compressed entries), where torch.save "
            "stores tensors uncompressed: a zip bomb, not a checkpoint"
        )
    else:
        return
    raise WeightsError(
        f"refused to load {path}: its zip directory declares {unpacked:,} bytes unpacked "
        f"({len(entries)} entries) from a {size:,}-byte file, {why}. Nothing was unpacked. Use a "
        "checkpoint written by torch.save, or raise weights_max_bytes if it really is that large."
    )
