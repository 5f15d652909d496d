#!/usr/bin/env bash
# Regenerate requirements.lock from requirements.in: every transitive dependency
# pinned to an exact version, with the sha256 of every published file of that
# version (pip install --require-hashes then accepts whichever file it picks).
#
# Run on linux x86_64 with CPython 3.11: environment markers are resolved for
# that platform (torch's CUDA build pulls in the nvidia-* and triton wheels).
# pip-tools runs in a throwaway venv; pip's usual configuration (index, extra
# indexes, find-links, CA bundle) applies. Extra arguments go to pip-compile,
# e.g.  tools/update-lock.sh --upgrade-package pillow
# After a change, also update envs/filterlens.yaml (tests/test_env_pins.py checks).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
py="${PYTHON:-python3.11}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$py" -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install -q --disable-pip-version-check "pip==26.3" "pip-tools==7.6.2"
CUSTOM_COMPILE_COMMAND="tools/update-lock.sh" \
  "$tmp/venv/bin/pip-compile" --quiet --generate-hashes --allow-unsafe --strip-extras \
  --no-emit-index-url --no-emit-find-links \
  --output-file requirements.lock requirements.in "$@"
