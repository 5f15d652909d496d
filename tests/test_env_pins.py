"""The three descriptions of the software environment must agree.

requirements.in pins the top-level packages, requirements.lock pins every
transitive dependency (with hashes) and envs/filterlens.yaml is the conda
environment used by ``--software-deployment-method conda``. The Dockerfile
installs requirements.lock on a Python 3.11 base. When one of them is edited
without the others, these tests fail and name the packages that drifted.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS_IN = ROOT / "requirements.in"
REQUIREMENTS_LOCK = ROOT / "requirements.lock"
CONDA_ENV = ROOT / "envs" / "filterlens.yaml"
DOCKERFILE = ROOT / "Dockerfile"

PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;\\#]+)")
PYTHON = "3.11"


def normalize(name: str) -> str:
    """PEP 503 name normalization (Pillow == pillow, PyYAML == pyyaml, a_b == a-b)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_pins(lines, source: str) -> dict[str, str]:
    """Map normalized name -> version for every `name==version` line."""
    pins: dict[str, str] = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("--"):
            continue
        match = PIN.match(line)
        assert match, f"{source}: not an exact pin: {line!r}"
        name = normalize(match.group(1))
        assert name not in pins, f"{source}: {name} is pinned twice"
        pins[name] = match.group(2)
    return pins


def requirements_in() -> dict[str, str]:
    return parse_pins(REQUIREMENTS_IN.read_text().splitlines(), "requirements.in")


def requirements_lock() -> dict[str, str]:
    # Only the requirement lines; hash continuation lines start with whitespace.
    lines = [line for line in REQUIREMENTS_LOCK.read_text().splitlines() if line[:1].isalnum()]
    return parse_pins(lines, "requirements.lock")


def conda_env() -> dict:
    return yaml.safe_load(CONDA_ENV.read_text())


def conda_pip_pins() -> dict[str, str]:
    pip_sections = [d["pip"] for d in conda_env()["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip_sections) == 1, "envs/filterlens.yaml needs exactly one pip: section"
    return parse_pins(pip_sections[0], "envs/filterlens.yaml (pip)")


def conda_python() -> str:
    specs = [d for d in conda_env()["dependencies"] if isinstance(d, str) and re.match(r"python\b", d)]
    assert len(specs) == 1, "envs/filterlens.yaml must name python exactly once"
    return re.sub(r"^python\s*=*\s*", "", specs[0])


def mismatches(expected: dict[str, str], actual: dict[str, str]) -> list[str]:
    return [
        f"{name}: {version} != {actual.get(name, 'missing')}"
        for name, version in sorted(expected.items())
        if actual.get(name) != version
    ]


def test_requirements_in_is_not_empty():
    assert len(requirements_in()) >= 5


def test_lock_matches_requirements_in():
    drift = mismatches(requirements_in(), requirements_lock())
    assert not drift, "requirements.lock drifted from requirements.in (run tools/update-lock.sh): " + "; ".join(drift)


def test_conda_env_matches_requirements_in():
    drift = mismatches(requirements_in(), conda_pip_pins())
    assert not drift, "envs/filterlens.yaml drifted from requirements.in: " + "; ".join(drift)


def test_conda_env_extra_pins_match_lock():
    """Anything else the conda env pins must be the locked version too."""
    lock = requirements_lock()
    extra = {n: v for n, v in conda_pip_pins().items() if n not in requirements_in()}
    drift = mismatches(extra, lock)
    assert not drift, "envs/filterlens.yaml pins versions that differ from requirements.lock: " + "; ".join(drift)


def test_every_lock_entry_has_a_hash():
    text = REQUIREMENTS_LOCK.read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text)
    missing = [e.split()[0] for e in entries if PIN.match(e) and "--hash=sha256:" not in e]
    assert not missing, f"requirements.lock entries without --hash: {missing}"


def test_python_version_agrees():
    assert conda_python() == PYTHON, f"envs/filterlens.yaml python={conda_python()}, expected {PYTHON}"
    header = REQUIREMENTS_LOCK.read_text()[:400]
    assert f"with Python {PYTHON}" in header, "requirements.lock was not compiled with Python " + PYTHON


@pytest.mark.skipif(not DOCKERFILE.exists(), reason="no Dockerfile")
def test_dockerfile_base_is_python_of_the_lock():
    base = re.search(r"^ARG BASE=(\S+)", DOCKERFILE.read_text(), re.MULTILINE)
    assert base, "Dockerfile lacks ARG BASE=..."
    assert base.group(1).startswith(f"python:{PYTHON}-"), base.group(1)
    assert re.search(r"@sha256:[0-9a-f]{64}$", base.group(1)), "base image must be pinned by digest"
