"""The container images build and reproduce a host run bit for bit.

Runs tests/container/build-and-test.sh: podman builds the Dockerfile's `env` and
`full` targets, the full image runs tests/configs/tiny.yaml, so does the env image on
a mounted working tree, the host runs the same config with this Python environment,
and every MANIFEST.sha256 must be equal.
Needs root (it installs podman and makes a debootstrap base image on first use).
Set FILTERLENS_SKIP_CONTAINER=1 to skip it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent / "container" / "build-and-test.sh"

pytestmark = pytest.mark.skipif(
    os.environ.get("FILTERLENS_SKIP_CONTAINER") == "1", reason="FILTERLENS_SKIP_CONTAINER=1"
)


def test_container_run_matches_host_run():
    env = {**os.environ, "FILTERLENS_HOST_PYTHON": os.environ.get("FILTERLENS_HOST_PYTHON", sys.executable)}
    result = subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=3600
    )
    # Timings and image sizes belong in the test log either way.
    sys.stdout.write(result.stdout[-6000:])
    assert result.returncode == 0, f"{SCRIPT.name} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    assert "manifests identical between host and container" in result.stdout
