# Set up the environment and run the tests; see README.md.
#   make env     Python environment in .venv from requirements.lock (exact versions, hashes)
#   make test    env + system packages the tests use + the whole test suite
#   make bench   env + tools/benchmark.py (ResNet18 at 600x600 against a naive script)
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: env test test-deps bench lint

env: $(VENV)/.installed

$(VENV)/.installed: requirements.lock
	@echo "Setting up $(VENV): $$(grep -c '^[a-z]' requirements.lock) packages from requirements.lock (a few minutes; pip lists each one)"
	python3 -m venv $(VENV)
	$(PY) -m pip install --progress-bar off --require-hashes --no-deps -r requirements.lock
	touch $@

# Debian packages the tests drive: headless Chromium opens the HTML report.
# (The Slurm and container tests install their own packages: tests/slurm, tests/container.)
test-deps:
	@command -v chromium >/dev/null || { \
	  [ "$$(id -u)" = 0 ] || { echo "chromium is missing: apt-get install chromium (as root)"; exit 1; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: env test-deps
	$(PY) -m pytest $(PYTEST_ARGS)

bench: env
	$(PY) tools/benchmark.py

lint: env
	$(VENV)/bin/snakemake --lint
	$(VENV)/bin/snakefmt --check Snakefile workflow/rules
