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
LIB := $(filter-out geomtoy/plot.py geomtoy/theory.py,$(wildcard geomtoy/*.py geomtoy/geometry/*.py))

# JAX picks the backend (a GPU or TPU when its plugin is installed, else CPU); set
# JAX_PLATFORMS yourself to force one. The tests pin CPU themselves (tests/conftest.py).

GEOMTOY := $(PY) -m geomtoy
# phase_2x1_1e5 (10^5 models, ~5 CPU-minutes) is its own target: `make phase-1e5`
SWEEPS := $(filter-out phase_2x1_1e5,$(basename $(notdir $(wildcard sweeps/*.toml))))
SWEEP_RESULTS := $(foreach s,$(SWEEPS),$(RESULTS)/$(s)/instances.parquet)
FIGURES := fig_intro fig_basic_20x5 fig_pentagon fig_phase fig_dims_per_feature fig_nonuniform \
	fig_privileged_basis fig_adversarial fig_correlated fig_dynamics fig_double_descent \
	fig_sae_directions fig_sae_pareto fig_sae_recovery
FIGURE_PNGS := $(foreach f,$(FIGURES),$(FIGOUT)/$(f).png)

.PHONY: all setup test test-all test-min figures sweeps clean help browser bench bench-sae bench-full bench-whole bench-device phase-1e5 tpu-command
all: figures

help:
	@echo "make figures [SCALE=smoke|default|paper]  run the sweeps and build figures/out/"
	@echo "make test                                  fast test suite (CPU, < 5 min)"
	@echo "make test-all                              plus the slow science checks"
	@echo "make test-min                              smoke tests on the lowest declared versions"
	@echo "make bench [bench-full]                    speed vs the PyTorch reference -> bench/RESULTS.md"
	@echo "make bench-whole                           whole geomtoy run processes and start-up vs the reference"
	@echo "make bench-device                          on an NVIDIA GPU machine: install CUDA, GPU tables, paper sweep"
	@echo "make tpu-command                           print the multi-host TPU command"

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

test: $(STAMP) browser
	$(PY) -m pytest -q

test-all: $(STAMP) browser
	$(PY) -m pytest -q -m ""

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

# A sweep reruns when its TOML or the library changed: an interrupted run of the same
# sweep resumes from its checkpoint, anything else is replaced (--overwrite).
$(RESULTS)/%/instances.parquet: sweeps/%.toml $(LIB) | $(STAMP)
	@if grep -qs '"status": "running"' $(RESULTS)/$*/meta.json && \
	    $(GEOMTOY) run $< --out $(RESULTS)/$* --scale $(SCALE); then :; \
	else $(GEOMTOY) run $< --out $(RESULTS)/$* --scale $(SCALE) --overwrite; fi
	@touch $@

sweeps: $(SWEEP_RESULTS)

# SAE sweeps (an [sae] table) also depend on the SAE engine and on the toy models they read.
SAE_SWEEPS := $(basename $(notdir $(shell grep -l '^\[sae\]' sweeps/*.toml)))
$(foreach s,$(SAE_SWEEPS),$(RESULTS)/$(s)/instances.parquet): $(wildcard geomtoy/sae/*.py)
$(RESULTS)/sae_pentagon/instances.parquet: $(RESULTS)/pentagon/instances.parquet
$(RESULTS)/sae_uniform/instances.parquet: $(RESULTS)/uniform_40x10/instances.parquet

FIGDEPS = geomtoy/plot.py | $(STAMP)
FIGRUN = $(PY) $< --results $(RESULTS) --out $(FIGOUT)
$(FIGOUT)/fig_intro.png: figures/fig_intro.py $(RESULTS)/intro_5x2/instances.parquet $(FIGDEPS)
	$(FIGRUN)
$(FIGOUT)/fig_basic_20x5.png: figures/fig_basic.py $(RESULTS)/basic_20x5/instances.parquet $(RESULTS)/basic_80x20/instances.parquet $(FIGDEPS)
	$(FIGRUN)
$(FIGOUT)/fig_pentagon.png: figures/fig_pentagon.py $(RESULTS)/pentagon/instances.parquet $(FIGDEPS)
	$(FIGRUN)
$(FIGOUT)/fig_phase.png: figures/fig_phase.py $(RESULTS)/phase_2x1/instances.parquet $(RESULTS)/phase_3x2/instances.parquet geomtoy/theory.py $(FIGDEPS)
	$(FIGRUN)
$(FIGOUT)/fig_dims_per_feature.png: figures/fig_uniform.py $(RESULTS)/uniform_superposition/instances.parquet $(RESULTS)/feature_geometry/instances.parquet $(FIGDEPS)
	$(FIGRUN)
$(FIGOUT)/fig_nonuniform.png: figures/fig_nonuniform.py $(RESULTS)/nonuniform_pentagon/instances.parquet $(FIGDEPS)
	$(FIGRUN)
$(FIGOUT)/fig_privileged_basis.png: figures/fig_neurons.py $(RESULTS)/privileged_basis/instances.parquet $(RESULTS)/abs_3x6/instances.parquet $(RESULTS)/abs_100x40/instances.parquet geomtoy/geometry/neurons.py $(FIGDEPS)
	$(FIGRUN)
$(FIGOUT)/fig_adversarial.png: figures/fig_adversarial.py $(RESULTS)/uniform_superposition/instances.parquet geomtoy/geometry/adversarial.py $(FIGDEPS)
	$(FIGRUN)
EXPLORER := $(FIGOUT)/explorer.html
$(FIGOUT)/fig_correlated.png: figures/fig_correlated.py $(RESULTS)/correlated_pairs/instances.parquet $(RESULTS)/correlated_collapse/instances.parquet $(FIGDEPS)
	$(FIGRUN)

$(FIGOUT)/fig_dynamics.png: figures/fig_dynamics.py $(RESULTS)/dynamics_digons/instances.parquet $(RESULTS)/dynamics_correlated_6x3/instances.parquet geomtoy/geometry/dimensionality.py $(FIGDEPS)
	$(FIGRUN)

# fig_double_descent.py also writes fig_dd_dimensionality, fig_dd_hidden and fig_dd_map.
$(FIGOUT)/fig_double_descent.png: figures/fig_double_descent.py $(RESULTS)/double_descent/instances.parquet $(FIGDEPS)
	$(FIGRUN)
$(FIGOUT)/fig_sae_directions.png: figures/fig_sae_directions.py $(RESULTS)/sae_pentagon/instances.parquet $(FIGDEPS)
	$(FIGRUN)
$(FIGOUT)/fig_sae_pareto.png: figures/fig_sae_pareto.py $(RESULTS)/sae_pareto_l1/instances.parquet $(RESULTS)/sae_pareto_k/instances.parquet $(FIGDEPS)
	$(FIGRUN)
$(FIGOUT)/fig_sae_recovery.png: figures/fig_sae_recovery.py $(RESULTS)/sae_uniform/instances.parquet $(FIGDEPS)
	$(FIGRUN)

$(EXPLORER): geomtoy/explore.py $(wildcard geomtoy/explore_assets/*) $(SWEEP_RESULTS) | $(STAMP)
	$(GEOMTOY) explore $(foreach s,$(filter-out $(SAE_SWEEPS),$(SWEEPS)),$(RESULTS)/$(s)) --out $@

$(FIGOUT)/index.html: figures/index.py $(FIGURE_PNGS) $(EXPLORER) $(SWEEP_RESULTS) | $(STAMP)
	$(PY) $< --results $(RESULTS) --out $(FIGOUT)
	@echo "figures: open $(FIGOUT)/index.html"

figures: $(FIGOUT)/index.html

bench: $(STAMP)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q -e ".[bench]"
	$(PY) -m bench

bench-sae: $(STAMP)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q -e ".[bench]"
	$(PY) -m bench.sae

bench-full: $(STAMP)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q -e ".[bench]"
	$(PY) -m bench --full

bench-whole: $(STAMP)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q -e ".[bench]"
	$(PY) -m bench.whole

bench-device:
	bash bench/device.sh

phase-1e5: $(FIGOUT)/fig_phase_1e5.png
$(FIGOUT)/fig_phase_1e5.png: figures/fig_phase_1e5.py figures/fig_phase.py $(RESULTS)/phase_2x1_1e5/instances.parquet $(FIGDEPS)
	$(FIGRUN)

tpu-command:
	@$(PY) -c "from geomtoy import parallel; print(parallel.tpu_command())"

clean:
	rm -rf results figures/out
