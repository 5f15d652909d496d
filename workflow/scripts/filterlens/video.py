"""Lossless AVI from PNG frames, and decoding for checks.

The PNG files themselves become the video's packets (ffmpeg's stream copy), so every decoded frame
equals its PNG bit for bit, at almost no cost. The ffmpeg binary is the one shipped in the pinned
imageio-ffmpeg wheel, the same everywhere the lock file is installed.
"""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Iterable

import numpy as np

from .files import atomic_path


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
            raise RuntimeError(f"ffmpeg failed to write {target}: {err.strip()}")
    return count


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
