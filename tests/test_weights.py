"""The real download code against a loopback HTTP server: verified, atomic, never twice."""

import hashlib

import pytest

from filterlens import weights


def serve(loopback, name: str, data: bytes) -> str:
    (loopback.folder / name).write_bytes(data)
    return loopback.url + name


def full(data: bytes) -> tuple[str, str]:
    return "full", hashlib.sha256(data).hexdigest()


def test_download_is_verified_and_recorded(loopback, tmp_path):
    data = b"checkpoint bytes" * 1000
    url = serve(loopback, "net-0123abcd.pth", data)
    target = tmp_path / "weights" / "net-0123abcd.pth"
    digest = weights.fetch(url, target, full(data))
    assert target.read_bytes() == data and digest == hashlib.sha256(data).hexdigest()
    record = tmp_path / "weights" / "net.imagenet.sha256"
    weights.write_record(record, digest, target.name)
    assert weights.read_record(record) == (digest, target)
    assert record.read_text() == f"{digest}  net-0123abcd.pth\n"  # sha256sum -c compatible


def test_a_verified_file_is_never_downloaded_again(loopback, tmp_path):
    data = b"abc" * 100
    url = serve(loopback, "m.pth", data)
    target = tmp_path / "m.pth"
    weights.fetch(url, target, full(data))
    weights.fetch(url, target, full(data))
    assert loopback.hits == {"/m.pth": 1}


def test_checksum_mismatch_leaves_nothing_behind(loopback, tmp_path):
    url = serve(loopback, "m.pth", b"tampered")
    target = tmp_path / "dl" / "m.pth"
    with pytest.raises(weights.WeightsError, match="checksum mismatch.*Nothing was kept"):
        weights.fetch(url, target, full(b"original"))
    assert list((tmp_path / "dl").iterdir()) == []


def test_offline_error_says_where_to_put_the_file(tmp_path):
    target = tmp_path / "resnet18-f37072fd.pth"
    url = "http://127.0.0.1:9/resnet18-f37072fd.pth"  # discard port: connection refused
    with pytest.raises(weights.WeightsError) as err:
        weights.fetch(url, target, ("prefix", "f37072fd"), timeout=5)
    message = str(err.value)
    assert "could not download" in message and str(target) in message
    assert "~/.cache/torch/hub/checkpoints/resnet18-f37072fd.pth" in message
    assert not target.exists()


def test_hash_prefix_in_the_name_is_used_when_no_full_hash_is_known(loopback, tmp_path):
    data = b"some weights"
    prefix = hashlib.sha256(data).hexdigest()[:8]
    name = f"net-{prefix}.pth"
    expected = weights.expected_hash(name, {})
    assert expected == ("prefix", prefix)
    weights.fetch(serve(loopback, name, data), tmp_path / name, expected)
    with pytest.raises(weights.WeightsError):
        weights.fetch(serve(loopback, "x.pth", b"other"), tmp_path / "x.pth", expected)


def test_known_full_hash_wins_over_the_prefix():
    hashes = weights.known_hashes()
    assert hashes["resnet18-f37072fd.pth"] == (
        "f37072fd47e89c5e827621c5baffa7500819f7896bbacec160b1a16c560e07ec"
    )
    assert weights.expected_hash("resnet18-f37072fd.pth", hashes)[0] == "full"


def test_an_existing_file_that_fails_verification_is_left_untouched(tmp_path):
    target = tmp_path / "m.pth"
    target.write_bytes(b"user's own file")
    with pytest.raises(weights.WeightsError, match="left untouched"):
        weights.fetch("http://127.0.0.1:9/m.pth", target, full(b"expected"))
    assert target.read_bytes() == b"user's own file"


def test_mirror_keeps_torchvision_file_names():
    url = "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"
    assert weights.source_url(url, None) == url
    assert (
        weights.source_url(url, "http://mirror.example/models/")
        == "http://mirror.example/models/alexnet-owt-7be5be79.pth"
    )


def test_a_file_changed_after_verification_is_refused_at_load(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "w.pth"
    torch.save({"w": torch.ones(2)}, path)
    good = hashlib.sha256(path.read_bytes()).hexdigest()
    assert weights.load_state_dict(path, good)["w"].tolist() == [1.0, 1.0]
    torch.save({"w": torch.zeros(2)}, path)
    with pytest.raises(weights.WeightsError, match="changed since it was verified"):
        weights.load_state_dict(path, good)
