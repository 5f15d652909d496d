"""Trust: weights that cannot be trusted are refused, and leave nothing a re-run would trust.

Checkpoints are served by a loopback HTTP server as a site mirror (`weights_mirror`), checked
against a site checksum file (`weights_checksums`), through the real workflow:

  alexnet             the mirror serves a tampered copy            -> checksum mismatch
  squeezenet1_1       the connection drops halfway                 -> truncated download
  mobilenet_v3_small  an unverified file already sits in place     -> left untouched, no download
  resnet18            the checksum matches, but the file carries a pickle payload that would create
                      a file when unpickled                        -> refused by weights_only
                      loading, the payload never runs; then the verified file is altered -> refused
  resnet34            only torchvision's 32-bit prefix is known, and the run sets
                      require_full_sha256                          -> refused before any download

A checkpoint known only by its prefix is otherwise accepted, said so in the log and recorded as
prefix-only; a small zip that would unpack to gigabytes is refused before it is unpacked; and a
local checkpoint for the wrong architecture (`weights: path.pth`) is refused too.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shlex
import struct
import zipfile
from pathlib import Path

import pytest

from conftest import LoopbackServer, Workflow, copy_workflow
from filterlens import weights

FILES = {
    "resnet18": "resnet18-f37072fd.pth",
    "alexnet": "alexnet-owt-7be5be79.pth",
    "squeezenet1_1": "squeezenet1_1-b8a52dc0.pth",
    "mobilenet_v3_small": "mobilenet_v3_small-047dcff4.pth",
}
PREFIX_ONLY = ("resnet34", "resnet34-b627a593.pth")  # not in the site's checksums file


class Payload:
    """Unpickling this runs a shell command: the classic malicious-checkpoint trick."""

    def __init__(self, marker: Path):
        self.command = f"touch {shlex.quote(str(marker))}"

    def __reduce__(self):
        return os.system, (self.command,)


def payload_checkpoint(path: Path, marker: Path) -> bytes:
    """A checkpoint that looks like a state dict but carries Payload; returns its bytes."""
    import torch

    torch.save({"conv1.weight": torch.zeros(2, 3, 1, 1), "metadata": Payload(marker)}, path)
    return path.read_bytes()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def weights_left(wf: Workflow, model: str) -> list[str]:
    """Everything under resources/weights/ about `model`, hidden temporary files included."""
    folder = wf.root / "resources/weights"
    return sorted(p.name for p in folder.glob(f"*{model}*")) if folder.exists() else []


def test_the_payload_is_live(tmp_path):
    """Control: loaded without weights_only, the same kind of file does run its command."""
    import torch

    marker = tmp_path / "pwned"
    payload_checkpoint(tmp_path / "control.pth", marker)
    torch.load(tmp_path / "control.pth", weights_only=False)
    assert marker.exists()


@pytest.fixture(scope="module")
def mirror_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("weights")
    wf = Workflow(copy_workflow(root / "wf"))
    served = root / "served"
    served.mkdir()
    marker = root / "payload-ran"
    sums = {}

    payload = payload_checkpoint(served / FILES["resnet18"], marker)
    sums["resnet18"] = sha256(payload)

    original = os.urandom(300_000)
    tampered = bytearray(original)
    tampered[1234] ^= 0xFF
    (served / FILES["alexnet"]).write_bytes(bytes(tampered))
    sums["alexnet"] = sha256(original)

    whole = os.urandom(3_000_000)
    (served / FILES["squeezenet1_1"]).write_bytes(whole)
    sums["squeezenet1_1"] = sha256(whole)

    good = os.urandom(100_000)
    (served / FILES["mobilenet_v3_small"]).write_bytes(good)
    sums["mobilenet_v3_small"] = sha256(good)
    stray = wf.root / "resources/weights" / FILES["mobilenet_v3_small"]
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"not the checkpoint")

    (wf.root / "site.sha256").write_text(
        "".join(f"{sums[model]}  {FILES[model]}\n" for model in FILES)
    )
    with LoopbackServer(served) as server:
        server.truncate[f"/{FILES['squeezenet1_1']}"] = 1_000_000
        config = wf.write_config(
            models=[*FILES, PREFIX_ONLY[0]], weights="imagenet", weights_mirror=server.url,
            allow_http_mirror=True, weights_checksums="site.sha256", require_full_sha256=True,
        )  # fmt: skip
        first = wf.snakemake("--keep-going", "--configfile", str(config), check=False)
        verified = (wf.root / "resources/weights" / FILES["resnet18"]).read_bytes()
        # Someone alters the verified file: the next extraction must notice.
        (wf.root / "resources/weights" / FILES["resnet18"]).write_bytes(verified + b"\0")
        target = "results/resnet18/chelsea/activations"
        second = wf.snakemake(target, "--configfile", str(config), check=False)
    return {
        "wf": wf, "first": first, "second": second, "hits": dict(server.hits), "url": server.url,
        "sums": sums, "marker": marker, "stray": stray, "verified": verified, "payload": payload,
    }  # fmt: skip


@pytest.mark.workflow
def test_mirror_run_fails(mirror_run):
    assert mirror_run["first"].returncode != 0
    assert mirror_run["second"].returncode != 0


@pytest.mark.workflow
def test_checksum_mismatch_keeps_nothing(mirror_run):
    wf, err = mirror_run["wf"], mirror_run["first"].stderr
    got = sha256((wf.root.parent / "served" / FILES["alexnet"]).read_bytes())  # the tampered copy
    assert (
        f"Error in rule fetch_weights: checksum mismatch for {mirror_run['url']}{FILES['alexnet']}: "
        f"got sha256 {got}, expected full {mirror_run['sums']['alexnet']}. Nothing was kept."
    ) in err
    assert weights_left(wf, "alexnet") == []
    assert not (wf.root / "results/alexnet").exists()


@pytest.mark.workflow
def test_truncated_download_keeps_nothing(mirror_run):
    wf, err = mirror_run["wf"], mirror_run["first"].stderr
    assert mirror_run["hits"][f"/{FILES['squeezenet1_1']}"] == 1
    assert (
        f"Error in rule fetch_weights: download of {mirror_run['url']}{FILES['squeezenet1_1']} "
        "stopped after 1000000 of 3000000 bytes"
    ) in err
    assert weights_left(wf, "squeezenet1_1") == []
    assert not (wf.root / "results/squeezenet1_1").exists()


@pytest.mark.workflow
def test_unverified_file_in_place_is_left_untouched_and_not_trusted(mirror_run):
    wf, err = mirror_run["wf"], mirror_run["first"].stderr
    assert f"/{FILES['mobilenet_v3_small']}" not in mirror_run["hits"]  # never downloaded over it
    assert re.search(
        rf"Error in rule fetch_weights: resources/weights/{FILES['mobilenet_v3_small']} exists but "
        r"its SHA-256 [0-9a-f]{64} does not match .* It is left untouched: delete it",
        err,
    ), err[-3000:]
    assert mirror_run["stray"].read_bytes() == b"not the checkpoint"
    assert weights_left(wf, "mobilenet_v3_small") == [FILES["mobilenet_v3_small"]]  # no record
    assert not (wf.root / "results/mobilenet_v3_small").exists()


@pytest.mark.workflow
def test_pickle_payload_is_refused_and_never_runs(mirror_run):
    wf, err = mirror_run["wf"], mirror_run["first"].stderr
    assert not mirror_run["marker"].exists()
    assert (
        f"Error in rule extract_activations_resnet18_1_of_1: refused to load resources/weights/{FILES['resnet18']}: "
        "it is not a plain state dict of tensors (it may carry code;"
    ) in err
    # The download itself matched the site's checksum, so it was kept and recorded as verified.
    assert mirror_run["verified"] == mirror_run["payload"]
    assert not (wf.root / "results/resnet18/chelsea/activations").exists()


@pytest.mark.workflow
def test_verified_file_altered_later_is_refused(mirror_run):
    wf, err = mirror_run["wf"], mirror_run["second"].stderr
    assert (
        f"Error in rule extract_activations_resnet18_1_of_1: resources/weights/{FILES['resnet18']} changed since it "
        f"was verified (sha256 {sha256(mirror_run['verified'] + bytes(1))}, recorded "
        f"{mirror_run['sums']['resnet18']}). Delete it and its .sha256 record"
    ) in err
    assert not mirror_run["marker"].exists()
    assert not (wf.root / "results/resnet18/chelsea/activations").exists()


@pytest.mark.workflow
def test_prefix_only_checkpoint_is_refused_when_the_full_sha256_is_required(mirror_run):
    wf, err = mirror_run["wf"], mirror_run["first"].stderr
    model, name = PREFIX_ONLY
    assert (
        f"Error in rule fetch_weights: refused {name}: only the 32-bit hash prefix b627a593 in its "
        "name is known, not its full SHA-256, and a file matching so short a prefix can be forged "
        "in minutes (require_full_sha256 is true). Add the file's full SHA-256 to a "
        f"weights_checksums file (a line '<64 hex digits>  {name}'), or set require_full_sha256: "
        "false to accept prefix-only verification."
    ) in err
    assert f"/{name}" not in mirror_run["hits"]  # refused before any download
    assert weights_left(wf, model) == [] and not (wf.root / "results" / model).exists()


def test_a_prefix_only_checkpoint_is_logged_and_recorded_as_such(loopback, tmp_path, caplog):
    data = os.urandom(1000)
    name = f"net-{sha256(data)[:8]}.pth"
    (loopback.folder / name).write_bytes(data)
    expected = weights.expected_for(name, weights.read_checksums())
    with caplog.at_level(logging.INFO, logger="filterlens"):
        digest = weights.fetch(loopback.url + name, tmp_path / name, expected)
    assert (
        f"{name} is verified by prefix only: its full SHA-256 is not known, only the 32-bit prefix "
        f"{sha256(data)[:8]} in its name"
    ) in caplog.text
    record = tmp_path / "net.imagenet.sha256"
    weights.write_record(record, weights.WeightsRecord(digest, tmp_path / name, expected.verification,
                                                       "imagenet: Net_Weights.V1"))  # fmt: skip
    assert weights.read_record(record).extraction_info()["verification"] == "prefix-only"
    # The same file, once the site lists its full SHA-256, is a full verification.
    (tmp_path / "site.sha256").write_text(f"{digest}  {name}\n")
    known = weights.read_checksums(tmp_path / "site.sha256")
    assert weights.expected_for(name, known, require_full=True).verification == "full"


def deflated_zeros(path: Path, megabytes: int) -> None:
    """A zip with one deflated entry of zeros: tiny on disk, `megabytes` MiB once unpacked."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("archive/data/0", "w") as entry:
            for _ in range(megabytes):
                entry.write(bytes(1 << 20))


def declare_unpacked_size(path: Path, size: int) -> None:
    """Rewrite the central directory's uncompressed size of the zip's only entry."""
    data = bytearray(path.read_bytes())
    at = data.rindex(b"PK\x01\x02") + 24  # central directory header: uncompressed size field
    data[at:at + 4] = struct.pack("<I", size)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("case", ["inflates-64-MiB", "declares-4-GB"])
def test_a_small_zip_that_would_inflate_is_refused_before_it_is_unpacked(tmp_path, monkeypatch, case):
    torch = pytest.importorskip("torch")
    bomb = tmp_path / "bomb.pth"
    deflated_zeros(bomb, 64)
    if case == "declares-4-GB":
        declare_unpacked_size(bomb, 0xFFFFFFF0)
    size = bomb.stat().st_size
    assert size < 200_000
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load was called"))
    with pytest.raises(weights.WeightsError) as err:
        weights.load_state_dict(bomb)
    message = str(err.value)
    unpacked = 64 << 20 if case == "inflates-64-MiB" else 0xFFFFFFF0
    assert message.startswith(
        f"refused to load {bomb}: its zip directory declares {unpacked:,} bytes unpacked (1 "
        f"entries) from a {size:,}-byte file, "
    )
    assert ("a zip bomb" if case == "inflates-64-MiB" else "more than weights_max_bytes") in message
    assert message.endswith(
        "Nothing was unpacked. Use a checkpoint written by torch.save, or raise weights_max_bytes "
        "if it really is that large."
    )


@pytest.mark.workflow
def test_checkpoint_for_another_architecture_is_refused(workflow_copy):
    """The same file loads for its own architecture (control) and is refused for resnet18."""
    import torch
    import torchvision

    wf = workflow_copy
    (wf.root / "checkpoints").mkdir()
    torch.manual_seed(0)
    state = torchvision.models.squeezenet1_1(weights=None).state_dict()
    torch.save(state, wf.root / "checkpoints/squeezenet.pth")
    config = wf.write_config(
        models=["resnet18", "squeezenet1_1"], weights="checkpoints/squeezenet.pth", layers=None
    )
    targets = [f"results/{m}/chelsea/activations" for m in ("resnet18", "squeezenet1_1")]
    result = wf.snakemake(*targets, "--keep-going", "--configfile", str(config), check=False)
    assert result.returncode != 0
    assert re.search(
        r"Error in rule extract_activations_resnet18_1_of_1: the checkpoint does not fit torchvision's resnet18: "
        r"(\d+) of the model's \1 tensors are missing from it \(conv1.weight, .*\) and 52 of its 52 "
        r"tensors are unknown to the model \(features.0.weight, .*\)\. It looks like a checkpoint "
        r"of another architecture\.",
        result.stderr,
    ), result.stderr[-3000:]
    log = (wf.root / "logs/extract_activations/resnet18/batch-1-of-1.log").read_text()
    assert "does not fit torchvision's resnet18" in log and "Traceback" not in log
    assert not (wf.root / "results/resnet18/chelsea/activations").exists()
    assert (wf.root / "results/squeezenet1_1/chelsea/activations/layers.tsv").exists()


def test_densenet_checkpoint_with_torchvision_old_key_names_loads():
    """torchvision's published DenseNet files name keys `norm.1`, `conv.2`, ... (no
    num_batches_tracked); torchvision renames them when it loads them, and so must we."""
    import torch
    import torchvision

    from filterlens.models import build_model

    torch.manual_seed(1)
    state = torchvision.models.densenet121(weights=None).state_dict()
    published = {
        re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", key): value
        for key, value in state.items()
        if not key.endswith("num_batches_tracked")
    }
    assert "features.denseblock1.denselayer1.norm.1.weight" in published
    model = build_model("densenet121", published, seed=2)
    loaded = model.state_dict()
    kept = [key for key in state if not key.endswith("num_batches_tracked")]
    assert all(torch.equal(loaded[key], state[key]) for key in kept)
