"""Atomic file writing and the TSV tables other tools read.

Every output is written to a temporary name beside its target and renamed into place, so a job
killed midway never leaves a half-written file that a re-run (or a reader) would trust.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import os
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Sequence


@contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it onto `target` only on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_temp_file(target)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _new_temp_file(target: Path) -> Path:
    """An empty, new file beside `target`, with the permissions any new file gets (umask).

    Unlike tempfile.mkstemp (always 0600), so that outputs are as readable as other files.
    """
    while True:
        tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue


def write_bytes(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        put_bytes(tmp, data)


def put_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` (inside a folder that atomic_dir is making, or a temporary file);
    a failed write names the file, which Python leaves out when a write, not the open, fails."""
    try:
        path.write_bytes(data)
    except OSError as err:
        if err.filename is None:
            raise OSError(err.errno, err.strerror, os.fspath(path)) from None
        raise


def write_text(target: str | os.PathLike, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))


@contextmanager
def atomic_dir(target: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty hidden directory beside `target`; it becomes `target` only on success."""
    target = Path(target)
    tmp = target.parent / f".{target.name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)  # left by a killed job: never trusted
    tmp.mkdir(parents=True)
    try:
        yield tmp
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def age(path: str | os.PathLike) -> list[tuple[Path, int, int]]:
    """Make an existing output look older than anything (time stamp 1970), so that Snakemake
    re-makes it: for outputs that no longer hold what they should. Nothing is deleted. A folder's
    time stamp is also the one Snakemake keeps inside it (.snakemake_timestamp). Returns the
    time stamps it replaced, (path, atime_ns, mtime_ns), for restore_times."""
    path = Path(path)
    replaced = []
    for target in (path / ".snakemake_timestamp", path):
        if target.exists():
            st = target.lstat()
            replaced.append((target, st.st_atime_ns, st.st_mtime_ns))
            os.utime(target, (0, 0), follow_symlinks=False)
    return replaced


def restore_times(stamps: Iterable[tuple[Path, int, int]]) -> None:
    """Give files the time stamps `age` replaced (those still there)."""
    for target, atime_ns, mtime_ns in stamps:
        with contextlib.suppress(FileNotFoundError):
            os.utime(target, ns=(atime_ns, mtime_ns), follow_symlinks=False)


def write_tsv(target: str | os.PathLike, columns: Sequence[str], rows: Iterable[Sequence]) -> None:
    lines = ["\t".join(columns)]
    lines += ["\t".join(_cell(v) for v in row) for row in rows]
    write_text(target, "\n".join(lines) + "\n")


def read_tsv(path: str | os.PathLike) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def _cell(value) -> str:
    if isinstance(value, float):
        return repr(float(value))  # shortest text that round-trips (numpy floats too)
    return str(value)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
