"""provenance.json and MANIFEST.sha256: the CPU features a record keeps, what makes two stacks
the same, and the AVI reader verify compares videos with."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import REPO
from filterlens import png, render
from filterlens.manifest import ManifestError, read_manifest
from filterlens.provenance import (
    ProvenanceError, cpu_features, cpu_model, read_provenance, stack_differences, write_provenance,
)  # fmt: skip
from filterlens.video import VideoError, avi_packets, encode_avi

X86 = """processor\t: 0
model name\t: AMD EPYC 9654
flags\t\t: fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 smep sme avx512f avx512_vnni amx_tile
"""
ARM = """processor\t: 0
Features\t: fp asimd asimddp sve sve2 bf16 i8mm sme sme2
"""


def test_cpu_features_keep_the_flags_that_choose_kernels():
    x86 = cpu_features(X86)
    assert x86["isa"] == ["amx_tile", "avx", "avx2", "avx512_vnni", "avx512f", "f16c", "fma",
                          "sse4_1", "sse4_2"]  # fmt: skip - not smep, nor x86 "sme" (encryption)
    assert len(x86["flags_sha256"]) == 64
    assert cpu_features(ARM)["isa"] == ["asimd", "asimddp", "bf16", "i8mm", "sme", "sme2", "sve", "sve2"]
    assert cpu_features("")["isa"] is None
    assert cpu_model(X86) == "AMD EPYC 9654"


def record(tmp_path, name="provenance.json", **changes):
    path = tmp_path / name
    write_provenance(path, model="m", image="i", run="r", config={"weights": "random"},
                     run_settings={"cmap": "gray", "save_video": False, "video_filename": "a.avi",
                                   "save_16bit": False},
                     device="cpu", threads=2, weights={"kind": "random"}, workflow_dir=REPO)  # fmt: skip
    if changes:
        data = json.loads(path.read_text())
        data.update(changes)
        path.write_text(json.dumps(data))
    return read_provenance(path)


def test_same_stack_only_when_versions_code_device_and_cpu_agree(tmp_path):
    a = record(tmp_path, "a.json")
    assert stack_differences(a, record(tmp_path, "b.json", threads=1)) == []  # threads do not count
    versions = {**a.versions, "torch": "0.0"}
    assert stack_differences(a, record(tmp_path, "c.json", versions=versions)) == [
        f"torch {a.versions['torch']} vs 0.0"
    ]
    features = {**a.cpu_features, "isa": ["sse4_1"]}
    (diff,) = stack_differences(a, record(tmp_path, "d.json", cpu_features=features))
    assert diff.startswith("CPU features: ") and diff.endswith(" vs -")
    assert "device cpu vs cuda" in stack_differences(a, record(tmp_path, "e.json", device="cuda"))
    assert "CPU features not recorded" in stack_differences(a, record(tmp_path, "f.json", cpu_features=None))
    assert "workflow code not recorded" in stack_differences(a, record(tmp_path, "g.json", workflow_code=None))


def test_malformed_records_are_refused_by_name(tmp_path):
    with pytest.raises(ProvenanceError, match="lacks key 'versions'"):
        record(tmp_path, versions=None)
    with pytest.raises(ProvenanceError, match="not str"):
        record(tmp_path, model=3)
    with pytest.raises(ProvenanceError, match="run_settings lacks 'save_video'"):
        record(tmp_path, run_settings={"cmap": "gray"})
    with pytest.raises(ProvenanceError, match="cpu_features.isa is not a list"):
        record(tmp_path, cpu_features={"isa": "avx2"})


def test_damaged_manifests_name_the_line(tmp_path):
    (tmp_path / "MANIFEST.sha256").write_text(f"{'a' * 64}  x.png\n{'b' * 64}  x.png\n")
    with pytest.raises(ManifestError, match="line 2: a repeated path"):
        read_manifest(tmp_path)


def test_avi_packets_are_the_png_frames(tmp_path):
    frames = []
    for level in (0, 100, 200):
        path = tmp_path / f"{level}.png"
        path.write_bytes(png.palette_png(np.full((8, 12), level, np.uint8), render.palette("gray")))
        frames.append(path)
    encode_avi(frames, tmp_path / "v.avi", 5)
    assert avi_packets(tmp_path / "v.avi") == [f.read_bytes() for f in frames]
    data = (tmp_path / "v.avi").read_bytes()
    (tmp_path / "cut.avi").write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError, match="cut.avi is not a readable AVI: cut short"):
        avi_packets(tmp_path / "cut.avi")
    (tmp_path / "png.avi").write_bytes(frames[0].read_bytes())
    with pytest.raises(VideoError, match="no RIFF AVI header"):
        avi_packets(tmp_path / "png.avi")
