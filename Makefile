# Two commands for a fresh machine: `make demo` (set up + main job) and `make test` (whole suite).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

# torch is installed first and pinned: the CPU wheel of 2.13.0 is on these machines; a bare
# `torch` requirement would pull a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test,dev,bench]'
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(BIN)/python -m experiments.run_all

# the suite in one process per core (pytest-xdist): its experiments and compile tests are single-threaded
test: setup
	$(BIN)/python -m pytest -q -n auto

clean:
	rm -rf $(VENV) results
