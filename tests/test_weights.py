"""The real download code against a loopback HTTP server: verified, atomic, never twice; the
checksums file, the record extraction reads, and loading."""

import hashlib
import logging
import re
import shutil
import subprocess
import zipfile

import pytest

from conftest import REPO
from filterlens import config as cfg
from filterlens import weights


def serve(loopback, name: str, data: bytes) -> str:
    (loopback.folder / name).write_bytes(data)
    return loopback.url + name


def full(data: bytes, size: int | None = None) -> weights.Expected:
    return weights.Expected(weights.FULL, hashlib.sha256(data).hexdigest(), size)


def test_download_is_verified_and_recorded(loopback, tmp_path):
    data = b"checkpoint bytes" * 1000
    url = serve(loopback, "net-0123abcd.pth", data)
    target = tmp_path / "weights" / "net-0123abcd.pth"
    digest = weights.fetch(url, target, full(data))
    assert target.read_bytes() == data and digest == hashlib.sha256(data).hexdigest()
    record = tmp_path / "weights" / "net.imagenet.sha256"
    written = weights.WeightsRecord(digest, target, weights.FULL, "imagenet: Net_Weights.V1")
    weights.write_record(record, written)
    assert weights.read_record(record) == written
    assert written.extraction_info() == {
        "kind": "imagenet: Net_Weights.V1", "file": "net-0123abcd.pth", "sha256": digest,
        "verification": "full",
    }  # fmt: skip
    assert record.read_text().endswith(f"\n{digest}  net-0123abcd.pth\n")


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="needs GNU sha256sum")
def test_record_and_checksums_file_stay_readable_by_sha256sum(tmp_path):
    target = tmp_path / "net-0123abcd.pth"
    target.write_bytes(b"weights")
    record = weights.WeightsRecord(
        hashlib.sha256(b"weights").hexdigest(), target, weights.PREFIX_ONLY, "imagenet: N"
    )
    weights.write_record(tmp_path / "net.imagenet.sha256", record)
    check = ["sha256sum", "--strict", "-c", "net.imagenet.sha256"]
    result = subprocess.run(check, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0 and "net-0123abcd.pth: OK" in result.stdout, result.stderr
    # The project's file: every line is read (none is "improperly formatted"); the files are absent.
    check = ["sha256sum", "--strict", "-c", str(weights.KNOWN_HASHES_FILE)]
    result = subprocess.run(check, cwd=tmp_path, capture_output=True, text=True)
    assert "improperly formatted" not in result.stderr
    assert result.stdout.count("FAILED open or read") == len(weights.read_checksums())


def test_a_record_without_verification_is_refused(tmp_path):
    record = tmp_path / "net.imagenet.sha256"
    record.write_text(f"{'a' * 64}  net-aaaaaaaa.pth\n")  # the format before verification was kept
    with pytest.raises(
        weights.WeightsError, match="delete it to fetch and verify the weights again"
    ):
        weights.read_record(record)


def test_a_local_checkpoint_is_recorded_as_such(tmp_path):
    path = tmp_path / "mine.pth"
    path.write_bytes(b"my weights")
    info = weights.local_record(path).extraction_info()
    assert info == {
        "kind": str(path), "file": "mine.pth", "sha256": hashlib.sha256(b"my weights").hexdigest(),
        "verification": "local-file",
    }  # fmt: skip


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
        weights.fetch(url, target, weights.Expected(weights.PREFIX_ONLY, "f37072fd"))
    message = str(err.value)
    assert "could not download" in message and str(target) in message
    assert "~/.cache/torch/hub/checkpoints/resnet18-f37072fd.pth" in message
    assert "--config weights=random" in message
    assert not target.exists()


def test_hash_prefix_in_the_name_is_used_when_no_full_hash_is_known(loopback, tmp_path, caplog):
    data = b"some weights"
    prefix = hashlib.sha256(data).hexdigest()[:8]
    name = f"net-{prefix}.pth"
    expected = weights.expected_for(name, {})
    assert expected == weights.Expected(weights.PREFIX_ONLY, prefix)
    with caplog.at_level(logging.INFO, logger="filterlens"):
        weights.fetch(serve(loopback, name, data), tmp_path / name, expected)
    assert f"{name} is verified by prefix only" in caplog.text
    with pytest.raises(weights.WeightsError):
        weights.fetch(serve(loopback, "x.pth", b"other"), tmp_path / "x.pth", expected)


def test_known_full_hash_wins_over_the_prefix():
    known = weights.read_checksums()
    expected = weights.expected_for("resnet18-f37072fd.pth", known)
    assert expected == weights.Expected(
        weights.FULL, "f37072fd47e89c5e827621c5baffa7500819f7896bbacec160b1a16c560e07ec", 46_830_571
    )


DEFAULT_MODELS = (
    "alexnet", "resnet18", "resnet50", "vgg16", "googlenet", "inception_v3", "densenet121",
    "mobilenet_v2", "efficientnet_b0", "convnext_tiny", "squeezenet1_1", "mobilenet_v3_small",
)  # fmt: skip


def test_the_default_checkpoints_are_known_by_their_full_sha256():
    """The file names torchvision's DEFAULT weights download today are the ones listed."""
    torchvision = pytest.importorskip("torchvision")

    known = weights.read_checksums()
    for model in DEFAULT_MODELS:
        name = torchvision.models.get_model_weights(model).DEFAULT.url.rsplit("/", 1)[-1]
        assert weights.expected_for(name, known, require_full=True).verification == weights.FULL


def test_every_listed_sum_fits_its_name_and_names_two_sources():
    """A sum whose first hex digits differ from the prefix in torchvision's name is wrong."""
    lines = weights.KNOWN_HASHES_FILE.read_text().splitlines()
    for name, expected in weights.read_checksums().items():
        prefix = re.search(r"-([0-9a-f]{6,})\.pth$", name).group(1)
        assert expected.sha256.startswith(prefix), name
        at = lines.index(f"{expected.sha256}  {name}")
        assert lines[at - 1].startswith("# sources: ") and lines[at - 1].count(";") == 1, name


def test_sizes_in_a_checksums_file_are_read_and_checked(tmp_path):
    sums = tmp_path / "site.sha256"
    sums.write_text(f"# size 7  a.pth\n# sources: x; y\n{'a' * 64}  a.pth\n{'b' * 64}  b.pth\n")
    assert weights.read_checksums(sums) == {
        "a.pth": weights.Expected(weights.FULL, "a" * 64, 7),
        "b.pth": weights.Expected(weights.FULL, "b" * 64),
    }
    sums.write_text(f"# size seven  a.pth\n{'a' * 64}  a.pth\n")
    with pytest.raises(weights.WeightsError, match="line 1 is not '# size <bytes>  <file name>'"):
        weights.read_checksums(sums)
    sums.write_text(f"# size 7  c.pth\n{'a' * 64}  a.pth\n")
    with pytest.raises(weights.WeightsError, match="gives a size but no SHA-256 for c.pth"):
        weights.read_checksums(sums)


def test_the_schema_states_the_download_defaults():
    schema = cfg.load_schema(REPO / "workflow/schemas/config.schema.yaml")["properties"]
    assert schema["weights_download_deadline_s"]["default"] == weights.DEFAULT_DEADLINE_S
    assert schema["weights_max_bytes"]["default"] == weights.DEFAULT_MAX_BYTES


def test_an_existing_file_that_fails_verification_is_left_untouched(tmp_path):
    target = tmp_path / "m.pth"
    target.write_bytes(b"user's own file")
    with pytest.raises(weights.WeightsError, match="left untouched"):
        weights.fetch("http://127.0.0.1:9/m.pth", target, full(b"expected"))
    assert target.read_bytes() == b"user's own file"


def test_mirror_keeps_torchvision_file_names(tmp_path):
    url = "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"
    assert weights.source_url(url, None) == url
    assert (
        weights.source_url(url, "https://mirror.example/models/")
        == "https://mirror.example/models/alexnet-owt-7be5be79.pth"
    )
    assert (
        weights.source_url(url, str(tmp_path)) == (tmp_path / "alexnet-owt-7be5be79.pth").as_uri()
    )


def test_a_folder_mirror_serves_the_file(tmp_path):
    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / "m-0123abcd.pth").write_bytes(b"from the folder")
    torchvision_url = "https://download.pytorch.org/models/m-0123abcd.pth"
    url = weights.source_url(torchvision_url, str(tmp_path / "mirror"))
    target = tmp_path / "dl" / "m-0123abcd.pth"
    weights.fetch(url, target, full(b"from the folder", size=15))
    assert target.read_bytes() == b"from the folder"


def test_a_file_changed_after_verification_is_refused_at_load(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "w.pth"
    torch.save({"w": torch.ones(2)}, path)
    good = hashlib.sha256(path.read_bytes()).hexdigest()
    assert weights.load_state_dict(path, good)["w"].tolist() == [1.0, 1.0]
    torch.save({"w": torch.zeros(2)}, path)
    with pytest.raises(weights.WeightsError, match="changed since it was verified"):
        weights.load_state_dict(path, good)


def test_checkpoints_of_both_torch_formats_load(tmp_path):
    """Zip (torch >= 1.6) and the older plain pickle, as torchvision's oldest files are."""
    torch = pytest.importorskip("torch")
    for name, zipped in (("new.pth", True), ("old.pth", False)):
        torch.save({"w": torch.arange(3.0)}, tmp_path / name, _use_new_zipfile_serialization=zipped)
        assert zipfile.is_zipfile(tmp_path / name) == zipped
        assert weights.load_state_dict(tmp_path / name)["w"].tolist() == [0.0, 1.0, 2.0]
