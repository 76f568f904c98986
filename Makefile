# The front door. Each target creates .venv on first use and installs what it needs,
# so any one of them works as the only command run on a fresh machine.

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q

.PHONY: demo test bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -U pip

# Reinstall when the package metadata changes.
$(VENV)/.test: $(PY) pyproject.toml
	$(PIP) install -e '.[test]'
	touch $@

$(VENV)/.bench: $(PY) pyproject.toml
	$(PIP) install -e '.[bench]'
	touch $@

demo: $(VENV)/.test
	$(PY) -m shmforest demo

test: $(VENV)/.test
	$(PY) -m pytest

bench: $(VENV)/.bench
	$(PY) -m pytest benchmarks --benchmark-enable --benchmark-only -p no:cacheprovider

clean:
	rm -rf $(VENV) .benchmarks .pytest_cache build *.egg-info
