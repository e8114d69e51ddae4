# geomtoy: `make figures` (set up, run the sweeps, build the figures) and `make test`.
# Make is a three-stage DAG: (1) a sweep is trained when its TOML or the engine changed;
# (2) its geometry tables are recomputed by `geomtoy analyze` when geometry/ changed (no
# training); (3) a figure is redrawn when its script, the library files it imports or the
# tables of the sweeps it declares (SWEEPS in the script) changed. Stamps: .trained and
# .analyzed in each results directory. `make -n -W FILE figures` shows what a change redoes.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SCALE ?= default
STAMP := $(VENV)/.installed-stamp
RESULTS := results/$(SCALE)
FIGOUT := $(if $(filter default,$(SCALE)),figures/out,figures/out/$(SCALE))
GEOMETRY := $(wildcard geomtoy/geometry/*.py)

# JAX picks the backend (a GPU or TPU when its plugin is installed, else CPU); set
# JAX_PLATFORMS yourself to force one. The tests pin CPU themselves (tests/conftest.py).

GEOMTOY := $(PY) -m geomtoy
# phase_2x1_1e5 (10^5 models, ~5 CPU-minutes) is its own target: `make phase-1e5`
SWEEPS := $(filter-out phase_2x1_1e5,$(basename $(notdir $(wildcard sweeps/*.toml))))
SWEEP_RESULTS := $(foreach s,$(SWEEPS),$(RESULTS)/$(s)/.analyzed)
FIGURE_RULES := $(FIGOUT)/.rules.mk
# Generated (figures/rules.py): ENGINE and SAE_ENGINE (the runners' imports from the training
# stages), SAE_SWEEPS and their edges to the toy sweeps their [source] tables read, and the
# figure rules. Included before the rules below read ENGINE.
include $(FIGURE_RULES)

.PHONY: all setup test test-all test-min figures sweeps clean help browser docs zoo bench bench-sae bench-scaling bench-full bench-whole bench-device phase-1e5 tpu-command
all: figures

help:
	@echo "make figures [SCALE=smoke|default|paper]  run the sweeps and build figures/out/"
	@echo "make test                                  fast test suite (CPU, < 5 min)"
	@echo "make test-all                              plus the slow science checks"
	@echo "make test-min                              smoke tests on the lowest declared versions"
	@echo "make bench [bench-full]                    speed vs the PyTorch reference -> bench/RESULTS.md"
	@echo "make bench-sae                             SAEs vs a one-SAE-at-a-time PyTorch loop -> bench/RESULTS.md"
	@echo "make bench-scaling                         Liu et al.'s grid vs their one-model loop -> bench/RESULTS.md"
	@echo "make bench-whole                           whole geomtoy run processes and start-up vs the reference"
	@echo "make bench-device                          on an NVIDIA GPU machine: install CUDA, GPU tables, paper sweep"
	@echo "make tpu-command                           print the multi-host TPU command"
	@echo "make docs                                  the documentation site -> site/ (offline)"
	@echo "make zoo                                   retrain the reference models of geomtoy.zoo"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	@touch $@

setup: $(STAMP)

# tests/test_explore.py drives Debian's chromium headless; install it when missing (root).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "chromium missing: the browser tests in tests/test_explore.py will be skipped"

# One pytest worker per core (at most 4): the suite is mostly single-threaded XLA
# compilation. Tests reading the shared smoke results stay on one worker (tests/conftest.py).
TEST_WORKERS ?= auto
test: $(STAMP) browser
	$(PY) -m pytest -q -n $(TEST_WORKERS) --maxprocesses 4 --dist loadgroup

test-all: $(STAMP) browser
	$(PY) -m pytest -q -m "" -n $(TEST_WORKERS) --maxprocesses 4 --dist loadgroup

# The lowest versions pyproject.toml declares, in their own venv, on a smoke subset.
VENV_MIN ?= .venv-min
SMOKE_TESTS := tests/test_docs.py tests/test_data.py tests/test_theory.py tests/test_geometry.py
test-min:
	$(PYTHON) -m venv $(VENV_MIN)
	$(VENV_MIN)/bin/python -m pip install -q $$($(PYTHON) tests/lowest_requirements.py) "pytest>=8"
	$(VENV_MIN)/bin/python -m pip install -q --no-deps -e .
	$(VENV_MIN)/bin/python -m pip list 2>/dev/null | grep -E -i "^(jax|jaxlib|optax|numpy|matplotlib|pyarrow) "
	$(VENV_MIN)/bin/python -m pytest -q -p no:cacheprovider $(SMOKE_TESTS)
	$(VENV_MIN)/bin/geomtoy run sweeps/pentagon.toml --scale smoke --out $(VENV_MIN)/smoke/pentagon --overwrite
	$(VENV_MIN)/bin/geomtoy explore $(VENV_MIN)/smoke/pentagon --out $(VENV_MIN)/smoke/explorer.html

# (1) Training: an interrupted run resumes from its checkpoint; a directory without a stamp
# (results of an earlier checkout) is adopted when it holds this sweep, complete; anything
# else is replaced (--overwrite). A run writes its geometry tables too (.analyzed).
RUN = $(GEOMTOY) run $< --out $(@D) --scale $(SCALE)
$(RESULTS)/%/.trained: sweeps/%.toml $(ENGINE) | $(STAMP)
	@fresh=; if [ ! -e $@ ] || grep -qs '"status": "running"' $(@D)/meta.json; then \
	  rc=0; $(RUN) || rc=$$?; \
	  if [ $$rc = 2 ]; then $(RUN) --overwrite || exit $$?; elif [ $$rc != 0 ]; then exit $$rc; fi; \
	else $(RUN) --overwrite || exit $$?; fresh=1; fi; \
	touch $@; if [ -n "$$fresh" ]; then touch $(@D)/.analyzed; fi

# (2) Geometry: recomputed from the saved weights, unless the run above just wrote it.
ANALYZE = $(GEOMTOY) analyze
$(RESULTS)/%/.analyzed: $(RESULTS)/%/.trained $(GEOMETRY) | $(STAMP)
	@if [ -e $@ ] && [ -z "$$(find $^ -newer $@)" ]; then :; else $(ANALYZE) $(@D); fi
	@touch $@

# The stamps are results, not intermediates: make must not delete them.
.PRECIOUS: $(RESULTS)/%/.trained $(RESULTS)/%/.analyzed

sweeps: $(SWEEP_RESULTS)

# SAE sweeps (an [sae] table) also depend on the SAE engine and on the toy models they
# read (both generated); their tables hold no polytope geometry, so geometry changes do not
# touch them.
$(foreach s,$(SAE_SWEEPS),$(RESULTS)/$(s)/.trained): $(SAE_ENGINE)
$(foreach s,$(SAE_SWEEPS),$(RESULTS)/$(s)/.analyzed): ANALYZE = :

# (3) Figures: rules generated from each script's SWEEPS and FIGURE (figures/rules.py).
FIGRUN = $(PY) $< --results $(RESULTS) --out $(FIGOUT)
$(FIGURE_RULES): figures/rules.py $(wildcard figures/fig_*.py sweeps/*.toml geomtoy/*.py geomtoy/*/*.py)
	@mkdir -p $(@D)
	$(PYTHON) figures/rules.py > $@
EXPLORER := $(FIGOUT)/explorer.html

# The toy sweeps in the gallery's order (GALLERY_SWEEPS, generated): the page opens on the
# paper's first figure's sweep; SAE sweeps show beside the toy sweeps they read.
EXPLORE_SWEEPS := $(filter $(SWEEPS),$(filter-out $(SAE_SWEEPS),$(GALLERY_SWEEPS)))
$(EXPLORER): $(EXPLORE_DEPS) $(wildcard geomtoy/viz/assets/*) $(SWEEP_RESULTS) | $(STAMP)
	$(GEOMTOY) explore $(foreach s,$(EXPLORE_SWEEPS),$(RESULTS)/$(s)) --out $@

$(FIGOUT)/index.html: figures/index.py $(FIGURE_PNGS) $(EXPLORER) $(SWEEP_RESULTS) | $(STAMP)
	$(PY) $< --results $(RESULTS) --out $(FIGOUT)
	@echo "figures: open $(FIGOUT)/index.html"

figures: $(FIGOUT)/index.html

# The documentation site (mkdocs.yml): docs/, the API reference generated from the docstrings
# and the example notebook executed during the build; no network at build time.
SITE ?= site
docs: $(STAMP)
	@$(PY) -c "import mkdocs, mkdocstrings_handlers.python, mkdocs_jupyter, material" 2>/dev/null || \
	  $(PY) -m pip install -q -e ".[docs]"
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --clean --site-dir $(SITE)
	@echo "docs: open $(SITE)/index.html"

# The reference models shipped in geomtoy/zoo/data/ (geomtoy.zoo): each entry's bundled
# sweep run into results/zoo/ (a complete run is reused), the selected models written.
zoo: $(STAMP)
	nice $(PY) -m geomtoy.zoo.build

bench: $(STAMP)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q -e ".[bench]"
	$(PY) -m bench

bench-sae: $(STAMP)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q -e ".[bench]"
	$(PY) -m bench.sae

bench-scaling: $(STAMP)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q -e ".[bench]"
	$(PY) -m bench.scaling

bench-full: $(STAMP)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q -e ".[bench]"
	$(PY) -m bench --full

bench-whole: $(STAMP)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q -e ".[bench]"
	$(PY) -m bench.whole

bench-device:
	bash bench/device.sh

phase-1e5: $(FIGOUT)/fig_phase_1e5.png
$(FIGOUT)/fig_phase_1e5.png: figures/fig_phase.py  # it imports fig_phase's helpers

tpu-command:
	@$(PY) -c "from geomtoy.engine import parallel; print(parallel.tpu_command())"

clean:
	rm -rf results figures/out
