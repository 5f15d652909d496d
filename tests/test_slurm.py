"""The tiny config run through a real one-node Slurm cluster gives the same results as a local run.

Runs tests/slurm/run-slurm-test.sh, which installs and starts Slurm on this host (root and
apt needed), so it takes a few minutes. Set FILTERLENS_SKIP_SLURM=1 to skip it; where it
cannot run it fails and says why instead of skipping silently.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent / "slurm" / "run-slurm-test.sh"

pytestmark = [
    pytest.mark.workflow,
    pytest.mark.skipif(
        os.environ.get("FILTERLENS_SKIP_SLURM") == "1", reason="FILTERLENS_SKIP_SLURM=1"
    ),
]


def test_slurm_run_matches_local_run():
    if os.geteuid() != 0:
        pytest.fail(
            "the Slurm test installs and starts a Slurm cluster and must run as root "
            "(set FILTERLENS_SKIP_SLURM=1 to skip it)"
        )
    if shutil.which("apt-get") is None:
        pytest.fail(
            "the Slurm test installs Slurm with apt-get, which this host lacks "
            "(set FILTERLENS_SKIP_SLURM=1 to skip it)"
        )
    env = dict(os.environ)
    # Slurm jobs run `python -m snakemake` with the submitting process's PATH:
    # put the interpreter that runs pytest (the project environment) first.
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    proc = subprocess.run(
        ["bash", str(SCRIPT)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=3600,
    )
    print(proc.stdout)
    assert proc.returncode == 0, (
        f"{SCRIPT.name} failed (exit {proc.returncode}); last output:\n"
        + "\n".join(proc.stdout.splitlines()[-40:])
    )
