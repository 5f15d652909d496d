"""Shared fixtures: a scratch copy of the workflow to run, and a loopback HTTP server for weights."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from filterlens.checkout import REPO, copy_workflow  # noqa: F401 - tests import both from here

class Workflow:
    """A scratch copy of the workflow and a way to run Snakemake in it."""

    def __init__(self, root: Path):
        self.root = root

    def write_config(self, name: str = "test.yaml", **values) -> Path:
        """tests/configs/tiny.yaml updated with `values`, written as `name` in the copy."""
        config = yaml.safe_load((self.root / "tests/configs/tiny.yaml").read_text())
        config.update(values)
        path = self.root / name
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def snakemake(self, *args: str, check: bool = True, timeout: float = 600, **kwargs):
        command = [sys.executable, "-m", "snakemake", "--cores", "2", *args]
        result = subprocess.run(
            command, cwd=self.root, capture_output=True, text=True, timeout=timeout, **kwargs
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"snakemake {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout[-4000:]}\n{result.stderr[-6000:]}"
            )
        return result

    def stamps(self) -> dict[Path, int]:
        """The modification time (ns) of everything under results/."""
        return {p: p.stat().st_mtime_ns for p in (self.root / "results").rglob("*")}

    def dry_run_jobs(self, *args: str) -> dict[str, int]:
        """rule -> job count that `snakemake -n` would run."""
        out = self.snakemake("-n", "--quiet", "rules", *args).stdout
        return parse_job_counts(out)

    def dry_run_wildcards(self, *args: str) -> list[tuple[str, str]]:
        """(rule, wildcards text) of every job `snakemake -n` would run."""
        out = self.snakemake("-n", *args).stdout
        jobs, rule = [], None
        for line in out.splitlines():
            line = line.strip()  # jobs of a group are listed indented
            if line.startswith(("rule ", "checkpoint ", "localrule ")):
                rule = line.split()[1].rstrip(":")
                jobs.append((rule, ""))
            elif line.strip().startswith("wildcards:") and jobs:
                jobs[-1] = (rule, line.split(":", 1)[1].strip())
        return jobs

    def run_dir(self, model="resnet18", image="chelsea", run="default") -> Path:
        return self.root / "results" / model / image / run


def parse_job_counts(text: str) -> dict[str, int]:
    counts, in_table = {}, False
    for line in text.splitlines():
        parts = line.split()
        if parts[:2] == ["job", "count"]:
            in_table = True
            continue
        if in_table and len(parts) == 2 and parts[1].isdigit():
            if parts[0] == "total":
                break
            counts[parts[0]] = int(parts[1])
    return counts


def write_activations(folder: Path, maps, size=(4, 4)) -> Path:
    """An activations folder of `maps` (layer -> C x H x W array) as extraction writes it, with a
    gray input.png of `size` (width, height); for tests of the steps that read one."""
    import numpy as np
    from PIL import Image

    from filterlens import activations

    layers = []
    for name, a in maps.items():
        a = np.asarray(a, dtype=np.float32)
        layers.append((activations.Layer(name, name, "Conv2d", *a.shape, a.shape[0]), a))
    info = {"weights": {"kind": "random", "seed": 0}, "img_size": list(size)}
    activations.write(folder, layers, [(1, 0, "class 0", 1.0)], Image.new("RGB", size, 128), info)
    return folder


@pytest.fixture
def workflow_copy(tmp_path) -> Workflow:
    return Workflow(copy_workflow(tmp_path / "wf"))


class LoopbackServer:
    """Serves files from a folder on 127.0.0.1 and counts the requests per path."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.hits: dict[str, int] = {}
        self.truncate: dict[str, int] = {}  # path -> bytes to send before closing the connection
        self.scripted: dict = {}  # path -> function(handler) that answers in place of the folder
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(folder), **kwargs)

            def do_GET(self):  # noqa: N802 - http.server's naming
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                if self.path in server.scripted:
                    return server.scripted[self.path](self)
                cut = server.truncate.get(self.path)
                if cut is None:
                    return super().do_GET()
                data = (folder / self.path.lstrip("/")).read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[:cut])
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def loopback(tmp_path):
    folder = tmp_path / "served"
    folder.mkdir()
    with LoopbackServer(folder) as server:
        yield server


# --- seeded checkpoints and torchvision's own builder, for the construction tests ----------------


def random_state(name: str, seed: int = 123):
    """A seeded state dict of torchvision's `name` unlike any fresh initialization: random
    BatchNorm statistics too, and the `_metadata` a saved state dict carries."""
    from collections import OrderedDict  # noqa: PLC0415 - torch only for the tests that use it

    import torch  # noqa: PLC0415
    import torchvision  # noqa: PLC0415

    from filterlens import models  # noqa: PLC0415

    torch.manual_seed(seed)
    own = torchvision.models.get_model(name, weights=None, **models._PLAIN_KWARGS.get(name, {}))
    own = own.state_dict()
    state = OrderedDict()
    for key, value in own.items():
        if key.endswith("running_var"):
            value = torch.rand_like(value) + 0.5
        elif key.endswith("running_mean"):
            value = torch.randn_like(value) * 0.1
        state[key] = value
    state._metadata = own._metadata
    return state


def torchvision_built(name: str, state: dict):
    """What torchvision's own builder makes of `state` for the DEFAULT weights (its download
    replaced by `state`), in eval mode: the reference the pretrained construction must equal."""
    from unittest import mock  # noqa: PLC0415

    import torchvision  # noqa: PLC0415
    from torchvision.models._api import WeightsEnum  # noqa: PLC0415

    from filterlens import models  # noqa: PLC0415

    weights = models.default_weights(name)

    def served(self, *args, **kwargs):
        assert self is weights
        return models._like(state, state.items())

    with mock.patch.object(WeightsEnum, "get_state_dict", served):
        return torchvision.models.get_model(name, weights=weights).eval()
