"""Lossless AVI from PNG frames, and decoding for checks.

The PNG files themselves become the video's packets (ffmpeg's stream copy), so every decoded frame
equals its PNG bit for bit, at almost no cost. The ffmpeg binary is the one shipped in the pinned
imageio-ffmpeg wheel, the same everywhere the lock file is installed.
"""

from __future__ import annotations

import errno
import os
import struct
import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Iterable

import numpy as np

from .files import atomic_path


class VideoError(RuntimeError):
    """A video that ffmpeg could not write, or a file that cannot be read as the workflow's AVI;
    the message names the file and the reason."""


def ffmpeg() -> str:
    import imageio_ffmpeg  # noqa: PLC0415

    return imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg_version() -> str:
    import imageio_ffmpeg  # noqa: PLC0415

    return imageio_ffmpeg.get_ffmpeg_version()


def rate(fps: float) -> str:
    """fps as an exact rational for ffmpeg (29.97 -> 2997/100)."""
    fraction = Fraction(fps).limit_denominator(1001)
    return f"{fraction.numerator}/{fraction.denominator}"


def encode_avi(frames: Iterable[Path], target: Path, fps: float) -> int:
    """Stream-copy PNG files into an AVI at `target` (atomically); return the frame count."""
    command = [
        ffmpeg(), "-hide_banner", "-loglevel", "error", "-nostdin",
        "-f", "image2pipe", "-framerate", rate(fps), "-c:v", "png", "-i", "pipe:0",
        "-c:v", "copy", "-map_metadata", "-1",
        "-fflags", "+bitexact", "-flags:v", "+bitexact",
        "-f", "avi", "-y",
    ]  # fmt: skip
    count = 0
    with atomic_path(target) as tmp:
        proc = subprocess.Popen(command + [str(tmp)], stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            for frame in frames:
                proc.stdin.write(Path(frame).read_bytes())
                count += 1
            proc.stdin.close()
        except BrokenPipeError:
            pass
        err = proc.stderr.read().decode(errors="replace")
        if proc.wait() != 0:
            raise _failure(err, target)
    return count


def _failure(err: str, target: Path) -> Exception:
    """What a failed ffmpeg means: storage that ran out reads like any other (jobs.clean_message
    names the output); anything else is ffmpeg's own message."""
    for code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        if os.strerror(code) in err:
            return OSError(code, os.strerror(code), str(target))
    return VideoError(f"ffmpeg failed to write {target}: {err.strip() or 'no message'}")


def decode_frames(video: Path, width: int, height: int, pix_fmt: str = "rgb24") -> np.ndarray:
    """All frames of `video` as an array (frames x H x W [x 3]); pix_fmt rgb24 or gray16le."""
    command = [
        ffmpeg(), "-hide_banner", "-loglevel", "error", "-nostdin", "-i", str(video),
        "-f", "rawvideo", "-pix_fmt", pix_fmt, "pipe:1",
    ]  # fmt: skip
    raw = subprocess.run(command, capture_output=True, check=True).stdout
    if pix_fmt == "gray16le":
        return np.frombuffer(raw, dtype="<u2").reshape(-1, height, width)
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, height, width, 3)


def avi_packets(path: str | Path) -> list[bytes]:
    """The video packets of an AVI in stream order (for the workflow's AVI: the PNG files), read
    from its RIFF structure (the first RIFF and any OpenDML AVIX extensions); VideoError when the
    file is not a complete AVI."""
    data = Path(path).read_bytes()
    packets: list[bytes] = []
    pos = 0
    try:
        while pos < len(data):
            if pos + 12 > len(data):
                raise VideoError(f"{len(data) - pos} stray bytes after the AVI data")
            tag, size, form = struct.unpack_from("<4sI4s", data, pos)
            if tag != b"RIFF" or form != (b"AVI " if pos == 0 else b"AVIX"):
                raise VideoError(f"no RIFF AVI header at byte {pos}")
            end = pos + 8 + size
            if end > len(data):
                raise VideoError(f"cut short: {end - len(data)} bytes of its AVI data missing")
            _riff_packets(data, pos + 12, end, packets, in_movi=False)
            pos = end + (size & 1)
    except VideoError as err:
        raise VideoError(f"{path} is not a readable AVI: {err}") from None
    if not data:
        raise VideoError(f"{path} is not a readable AVI: the file is empty")
    return packets


def _riff_packets(data: bytes, pos: int, end: int, packets: list[bytes], in_movi: bool) -> None:
    """Collect the video chunks (`##dc`, `##db`) of the `movi` lists between pos and end."""
    while pos + 8 <= end:
        tag, size = struct.unpack_from("<4sI", data, pos)
        body = pos + 8
        if body + size > end:
            raise VideoError(f"chunk {tag!r} at byte {pos} runs past the end of its list")
        if tag == b"LIST":
            kind = data[body : body + 4]
            _riff_packets(data, body + 4, body + size, packets, in_movi or kind in (b"movi", b"rec "))
        elif in_movi and tag[2:] in (b"dc", b"db"):
            packets.append(data[body : body + size])
        pos = body + size + (size & 1)
