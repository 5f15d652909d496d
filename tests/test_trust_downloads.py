"""Trust: downloads are bounded, clean up after dead attempts, and never leak a mirror's password.

Against a loopback HTTP server (127.0.0.1 only) scripted per path:

  a server that trickles bytes forever            -> the overall deadline ends it, nothing kept
  one that sends more than the size cap           -> cut off, nothing kept
  one that announces more than the cap            -> refused before reading
  one that announces another size than recorded   -> refused before reading
  a temporary file of a killed download           -> removed by the next download
  a temporary file of a download still running    -> left alone
  a mirror that asks for a password               -> read from $NETRC or the environment, never
                                                     from the URL, and never logged or recorded
  a mirror URL with user:password, or plain http  -> refused at start-up, naming the key
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import subprocess
import sys
import time

import pytest
import yaml

from conftest import REPO
from filterlens import config as cfg
from filterlens import weights

SCHEMA = cfg.load_schema(REPO / "workflow/schemas/config.schema.yaml")
TINY = yaml.safe_load((REPO / "tests/configs/tiny.yaml").read_text())
USER, SECRET = "reader", "s3cret-pw-1f0e"


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def anything(data: bytes = b"") -> weights.Expected:
    return weights.Expected(weights.FULL, hashlib.sha256(data).hexdigest())


def headers(handler, length: int | None = None, status: int = 200) -> None:
    handler.send_response(status)
    if length is not None:
        handler.send_header("Content-Length", str(length))
    handler.end_headers()


def send(handler, blocks: int, size: int, pause: float = 0.0) -> bool:
    """Write `blocks` blocks of `size` bytes; False if the client hung up before the last."""
    for _ in range(blocks):
        try:
            handler.wfile.write(b"x" * size)
            handler.wfile.flush()
        except OSError:
            return False
        time.sleep(pause)
    return True


def trickle(finished: list | None = None):
    """A handler that sends one byte every 50 ms (for 20 s at most) and notes when it got through."""

    def answer(handler):
        headers(handler, length=1_000_000)
        if send(handler, blocks=400, size=1, pause=0.05) and finished is not None:
            finished.append(True)

    return answer


# --- bounded in time and size ----------------------------------------------------------------


def test_a_trickling_server_hits_the_overall_deadline(loopback, tmp_path):
    finished = []
    loopback.scripted["/slow.pth"] = trickle(finished)
    limits = weights.Limits(deadline_s=0.5, read_timeout_s=5)  # each read is far below 5 s
    with pytest.raises(weights.WeightsError) as err:
        weights.fetch(loopback.url + "slow.pth", tmp_path / "dl" / "slow.pth", anything(), limits)
    assert not finished  # given up while the server was still sending, not when it stopped
    message = str(err.value)
    assert "did not finish within weights_download_deadline_s (0.5 s;" in message
    assert "of 1000000 bytes came): nothing was kept" in message
    assert "raise weights_download_deadline_s" in message
    assert leftovers(tmp_path / "dl") == []


@pytest.mark.parametrize(
    "size, cap, why",
    [(None, 5_000, "weights_max_bytes"), (5_000, 10**9, "the size the checksums file records")],
)
def test_more_bytes_than_the_cap_are_cut_off(loopback, tmp_path, size, cap, why):
    """No Content-Length: the body ends when the server closes, so only the cap stops it."""
    loopback.scripted["/big.pth"] = lambda h: (headers(h), send(h, blocks=100, size=1_000))
    expected = weights.Expected(weights.FULL, "0" * 64, size)
    with pytest.raises(weights.WeightsError) as err:
        weights.fetch(loopback.url + "big.pth", tmp_path / "dl" / "big.pth", expected,
                      weights.Limits(max_bytes=cap))  # fmt: skip
    assert str(err.value) == (
        f"{loopback.url}big.pth sent more than 5,000 bytes ({why}): cut off, nothing was kept"
    )
    assert leftovers(tmp_path / "dl") == []


def test_an_announced_length_above_the_cap_is_refused_before_reading(loopback, tmp_path):
    loopback.scripted["/huge.pth"] = lambda handler: headers(handler, length=10**12)
    with pytest.raises(weights.WeightsError) as err:
        weights.fetch(loopback.url + "huge.pth", tmp_path / "dl" / "huge.pth", anything())
    assert str(err.value) == (
        f"{loopback.url}huge.pth announces 1,000,000,000,000 bytes, more than weights_max_bytes "
        "(4,000,000,000): refused before reading, nothing was kept. If the checkpoint really is "
        "that large, raise weights_max_bytes."
    )
    assert loopback.hits == {"/huge.pth": 1} and leftovers(tmp_path / "dl") == []


def test_an_announced_length_other_than_the_recorded_size_is_refused(loopback, tmp_path):
    (loopback.folder / "m.pth").write_bytes(b"y" * 300)
    expected = weights.Expected(weights.FULL, hashlib.sha256(b"y" * 300).hexdigest(), 200)
    with pytest.raises(weights.WeightsError, match="announces 300 bytes but the checksums file "
                       "records 200 for this file: refused before reading"):  # fmt: skip
        weights.fetch(loopback.url + "m.pth", tmp_path / "dl" / "m.pth", expected)
    assert leftovers(tmp_path / "dl") == []


# --- temporary files of earlier attempts -----------------------------------------------------

_HOLD_LOCK = (
    "import fcntl, sys\n"
    "f = open(sys.argv[1], 'ab')\n"
    "fcntl.flock(f, fcntl.LOCK_EX)\n"
    "print('locked', flush=True)\n"
    "sys.stdin.read()\n"  # until the test closes stdin
)


def test_dead_temporary_files_are_removed_and_a_live_one_is_kept(loopback, tmp_path):
    data = b"checkpoint" * 100
    (loopback.folder / "m.pth").write_bytes(data)
    folder = tmp_path / "dl"
    folder.mkdir()
    dead = folder / ".m.pth.1a2b3c4d.tmp"
    dead.write_bytes(b"half a download")
    live = folder / ".m.pth.5e6f7a8b.tmp"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(live)], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"  # another process's download
        weights.fetch(loopback.url + "m.pth", folder / "m.pth", anything(data))
        assert leftovers(folder) == [live.name, "m.pth"]
    finally:
        holder.communicate(timeout=10)
    weights.remove_dead_temps(folder / "m.pth")  # once its process is gone, it is dead too
    assert leftovers(folder) == ["m.pth"]


def test_what_a_killed_download_left_is_removed_by_the_next(loopback, tmp_path):
    loopback.scripted["/slow/m.pth"] = trickle()
    data = b"the real checkpoint"
    (loopback.folder / "m.pth").write_bytes(data)
    target = tmp_path / "dl" / "m.pth"
    code = (
        f"import sys; sys.path.insert(0, {str(REPO / 'workflow/scripts')!r})\n"
        "from pathlib import Path\nfrom filterlens import weights\n"
        "weights.fetch(sys.argv[1], Path(sys.argv[2]), weights.Expected('full', '0' * 64))\n"
    )
    job = subprocess.Popen([sys.executable, "-c", code, loopback.url + "slow/m.pth", str(target)])
    try:
        for _ in range(400):  # until its temporary file exists (20 s at most)
            if any(name.endswith(".tmp") for name in leftovers(target.parent)):
                break
            time.sleep(0.05)
    finally:
        job.kill()
        job.wait(timeout=10)
    [left] = leftovers(target.parent)
    assert left.startswith(".m.pth.") and left.endswith(".tmp")
    weights.fetch(loopback.url + "m.pth", target, anything(data))
    assert leftovers(target.parent) == ["m.pth"]


# --- credentials -----------------------------------------------------------------------------


def needs_login(handler, body: bytes = b"private checkpoint"):
    token = base64.b64encode(f"{USER}:{SECRET}".encode()).decode()
    if handler.headers.get("Authorization") != f"Basic {token}":
        handler.send_response(401)
        handler.send_header("WWW-Authenticate", 'Basic realm="models"')
        handler.send_header("Content-Length", "0")
        handler.end_headers()
        return
    headers(handler, length=len(body))
    handler.wfile.write(body)


@pytest.mark.parametrize("source", ["netrc", "environment"])
def test_mirror_credentials_come_from_netrc_or_the_environment_and_are_never_shown(
    loopback, tmp_path, caplog, source
):
    loopback.scripted["/m-0123abcd.pth"] = needs_login
    netrc_file = tmp_path / "netrc"
    netrc_file.write_text(f"machine 127.0.0.1 login {USER} password {SECRET}\n")
    environ = {"NETRC": str(netrc_file)} if source == "netrc" else {
        weights.USER_ENV: USER, weights.PASSWORD_ENV: SECRET, "NETRC": str(tmp_path / "none"),
    }  # fmt: skip
    credentials = weights.mirror_credentials(loopback.url, environ)
    target = tmp_path / "dl" / "m-0123abcd.pth"
    with caplog.at_level(logging.DEBUG):
        digest = weights.fetch(
            loopback.url + "m-0123abcd.pth", target, anything(b"private checkpoint"),
            credentials=credentials,
        )  # fmt: skip
    record = weights.WeightsRecord(digest, target, weights.FULL, "imagenet: M_Weights.V1")
    weights.write_record(tmp_path / "dl" / "m.imagenet.sha256", record)
    assert target.read_bytes() == b"private checkpoint"
    assert f"authenticating as {USER} (from " in caplog.text
    shown = [caplog.text, repr(credentials), str(record.extraction_info()),
             (tmp_path / "dl" / "m.imagenet.sha256").read_text()]  # fmt: skip
    assert not [text for text in shown if SECRET in text]


def test_refused_credentials_are_reported_without_the_password(loopback, tmp_path):
    loopback.scripted["/m.pth"] = needs_login
    wrong = weights.Credentials(USER, "not-" + SECRET, "$FILTERLENS_MIRROR_USER and ...")
    for credentials, said in ((wrong, "the credentials from $FILTERLENS_MIRROR_USER and ... were "
                               "refused"), (None, "no credentials were given")):  # fmt: skip
        with pytest.raises(weights.WeightsError) as err:
            url, target = loopback.url + "m.pth", tmp_path / "m.pth"
            weights.fetch(url, target, anything(), credentials=credentials)
        message = str(err.value)
        assert "the server answered HTTP 401" in message and said in message
        assert "~/.netrc" in message and SECRET not in message
    assert weights.mirror_credentials(None) is None  # torchvision's own server: no credentials


def test_a_broken_netrc_is_reported_without_its_contents(tmp_path):
    netrc_file = tmp_path / "netrc"
    netrc_file.write_text(f"machine mirror.example login {USER} password {SECRET} stray\n")
    with pytest.raises(weights.WeightsError) as err:
        weights.mirror_credentials("https://mirror.example/", {"NETRC": str(netrc_file)})
    assert str(err.value).startswith(f"{netrc_file} line ")  # netrc counts lines its own way
    assert str(err.value).endswith(" is not valid netrc: fix it") and SECRET not in str(err.value)


def test_half_given_environment_credentials_are_refused():
    with pytest.raises(weights.WeightsError, match="FILTERLENS_MIRROR_PASSWORD is not set"):
        weights.mirror_credentials("https://mirror.example/", {weights.USER_ENV: USER})


def start_up(**values) -> dict:
    config = cfg.validate({**TINY, **values}, SCHEMA)
    cfg.check(config, REPO)
    return config


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_a_mirror_url_with_a_password_is_refused_at_start_up_without_showing_it(scheme):
    with pytest.raises(cfg.ConfigError) as err:
        start_up(weights_mirror=f"{scheme}://{USER}:{SECRET}@mirror.example:8443/models/",
                 allow_http_mirror=True)  # fmt: skip
    message = str(err.value)
    assert message.startswith(
        f"config key 'weights_mirror': {scheme}://***@mirror.example:8443/models/ carries a user "
        "name or password, which would be copied into job parameters, logs and provenance.json."
    )
    assert "~/.netrc" in message and "FILTERLENS_MIRROR_USER" in message
    assert SECRET not in message and USER not in message


def test_plain_http_needs_the_opt_in_key():
    with pytest.raises(cfg.ConfigError) as err:
        start_up(weights_mirror="http://mirror.example/models/")
    assert str(err.value).startswith(
        "config key 'weights_mirror': 'http://mirror.example/models/' is plain http"
    )
    assert "set allow_http_mirror: true" in str(err.value)
    assert start_up(weights_mirror="http://mirror.example/", allow_http_mirror=True)


def test_https_file_urls_and_folders_are_mirrors(tmp_path):
    for mirror in ("https://mirror.example/models", tmp_path.as_uri(), str(tmp_path),
                   os.path.relpath(REPO / "resources", REPO)):  # fmt: skip
        assert start_up(weights_mirror=mirror)["weights_mirror"] == mirror
