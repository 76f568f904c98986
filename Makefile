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

# Reinstall when the package metadata changes. The dask plugin goes in after
# shmforest itself, so pip finds its shmforest requirement satisfied by this
# checkout (never PyPI); its tests run with ours (pyproject.toml testpaths).
$(VENV)/.test: $(PY) pyproject.toml plugins/shmforest-dask/pyproject.toml
	$(PIP) install -e '.[test]'
	$(PIP) install -e ./plugins/shmforest-dask
	touch $@

$(VENV)/.bench: $(PY) pyproject.toml
	$(PIP) install -e '.[bench]'
	touch $@

demo: $(VENV)/.test
	$(PY) -m shmforest demo

# Lint, format and types first: they take seconds and fail before a long test run.
test: $(VENV)/.test
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) -m pytest

bench: $(VENV)/.bench
	$(PY) -m shmforest bench

clean:
	rm -rf $(VENV) .benchmarks .pytest_cache build *.egg-info plugins/*/*.egg-info
