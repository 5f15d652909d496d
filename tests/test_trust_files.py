"""Trust, at the level of single writes (fast, no workflow, no root): a write that fails or is cut
short leaves nothing behind, a folder a killed job left is never trusted, outputs get the usual
permissions, and a full disk is reported as such."""

from __future__ import annotations

import errno
import os
import stat

import pytest

from filterlens import files
from filterlens.jobs import clean_message
from filterlens.weights import WeightsError


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def disk_full(path="frame.png"):
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)


def test_failed_file_write_leaves_nothing(tmp_path):
    target = tmp_path / "scales.tsv"
    with pytest.raises(OSError):
        with files.atomic_path(target) as tmp:
            tmp.write_bytes(b"half of it")
            raise disk_full()
    assert list(tmp_path.iterdir()) == []


def test_failed_file_write_keeps_the_previous_version(tmp_path):
    target = tmp_path / "scales.tsv"
    target.write_text("old\n")
    with pytest.raises(OSError):
        with files.atomic_path(target) as tmp:
            tmp.write_text("new, unfinished")
            raise disk_full()
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["scales.tsv"]


def test_failed_folder_write_leaves_nothing(tmp_path):
    target = tmp_path / "frames" / "conv1"
    with pytest.raises(OSError):
        with files.atomic_dir(target) as out:
            (out / "0000.png").write_bytes(b"png")
            raise disk_full()
    assert list((tmp_path / "frames").iterdir()) == []


def test_folder_left_by_a_killed_job_is_discarded(tmp_path):
    target = tmp_path / "frames" / "conv1"
    stale = tmp_path / "frames" / ".conv1.partial"
    stale.mkdir(parents=True)
    (stale / "0000.png").write_bytes(b"half a frame")
    (stale / "0001.png").write_bytes(b"")
    with files.atomic_dir(target) as out:
        (out / "0000.png").write_bytes(b"whole frame")
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == ["conv1"]
    assert [p.name for p in target.iterdir()] == ["0000.png"]
    assert (target / "0000.png").read_bytes() == b"whole frame"


def test_outputs_get_the_permissions_of_any_new_file(tmp_path, umask_022):
    """Not 0600 (tempfile.mkstemp's): results and weights on a shared disk stay readable."""
    files.write_text(tmp_path / "MANIFEST.sha256", "x\n")
    with files.atomic_dir(tmp_path / "conv1") as out:
        (out / "0000.png").write_bytes(b"png")
    assert stat.S_IMODE((tmp_path / "MANIFEST.sha256").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "conv1").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "conv1" / "0000.png").stat().st_mode) == 0o644


@pytest.mark.parametrize(
    "code, words",
    [(errno.ENOSPC, "no space left on the device"), (errno.EDQUOT, "disk quota exceeded"),
     (errno.EFBIG, "file size limit exceeded")],
)  # fmt: skip
def test_running_out_of_storage_is_a_clean_error(code, words):
    message = clean_message(OSError(code, os.strerror(code)), ["results/m/i/r/frames/conv1"])
    assert message.startswith(f"{words} while writing results/m/i/r/frames/conv1")
    assert "Free some space" in message


def test_storage_error_names_the_file_when_known():
    message = clean_message(
        disk_full("results/m/i/activations/.x.tmp"), ["results/m/i/activations"]
    )
    assert "while writing results/m/i/activations/.x.tmp" in message


def test_package_errors_are_clean_and_other_errors_are_bugs():
    assert clean_message(WeightsError("checksum mismatch")) == "checksum mismatch"
    assert clean_message(OSError(errno.EACCES, "Permission denied")) is None
    assert clean_message(ValueError("bug")) is None
