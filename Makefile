# Two entry points, each setting up from scratch when needed:
#   make study   set up, then run the default study (config.yaml)
#   make test    set up, then run the test suite
# and `make lint` (ruff, snakefmt --check, snakemake --lint; CI runs it before the tests).
# Setup is a virtual environment in .venv with repatlas installed editable. torch is pinned to
# 2.13.0 in pyproject.toml: on CPU machines with the local CPU wheel (see README) pip takes that
# file; elsewhere PyPI's build (CUDA on Linux). Set TORCH_INDEX to pick a torch index, e.g.
#   make study TORCH_INDEX=https://download.pytorch.org/whl/cpu
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= all
TORCH_INDEX ?=

.PHONY: setup study test lint clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch==2.13.0" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

study: setup
	$(BIN)/snakemake --cores $(CORES)

test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/snakefmt --check Snakefile rules
	$(BIN)/snakemake --lint

clean:
	rm -rf results .snakemake
