# geomtoy: `make figures` (set up, run the sweeps, build the figures) and `make test`.
# Make is the figure DAG: a sweep reruns only when its TOML or the library changed, a
# figure only when its script or its sweeps' results changed.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SCALE ?= default
STAMP := $(VENV)/.installed-stamp
RESULTS := results/$(SCALE)
FIGOUT := $(if $(filter default,$(SCALE)),figures/out,figures/out/$(SCALE))
LIB := $(wildcard geomtoy/*.py geomtoy/geometry/*.py)

export JAX_PLATFORMS ?= cpu

.PHONY: all setup test test-all figures sweeps clean help
all: figures

help:
	@echo "make figures [SCALE=smoke|default|paper]  run the sweeps and build figures/out/"
	@echo "make test                                  fast test suite (CPU, < 5 min)"
	@echo "make test-all                              plus the slow science checks"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	@touch $@

setup: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

test-all: $(STAMP)
	$(PY) -m pytest -q -m ""

clean:
	rm -rf results figures/out
