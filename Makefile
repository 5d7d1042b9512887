# tfa_tutorial — developer and student entry points.
#
#   make lab         set up what is missing (venv, data), open JupyterLab at the repository root on the first notebook
#   make notebooks   execute every notebook in notebooks/ headless, in order
#   make html        export the executed notebooks and exercises to static HTML in docs/html/ (no kernel needed)
#   make test        the whole test suite: pytest tests, then nbval (lax, fast mode) on the notebooks
#   make bench       install the benchmark's peers (.[test,bench]) and regenerate docs/speed.* and the README speed block
#   make venv        create .venv and install the package (instant when nothing changed)
#   make data        make sure Fashion-MNIST is available offline (Debian package) or say how to get it
#   make browser     make sure Chromium is available for the browser tests (Debian package) or say how to get it
#   make clean       remove build artefacts and caches (keeps .venv and data)
#   make distclean   clean, and also delete .venv
#
# Variables you can override: PYTHON, VENV, TORCH_PINS, LAB_ARGS, PYTEST_ARGS, RUN_NOTEBOOKS, BENCH_ARGS.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   ?= .venv
VPY    := $(VENV)/bin/python
# The stamp lives inside the venv: deleting .venv also forgets that it was installed.
STAMP  := $(VENV)/.tfa_tutorial-installed

# torch/torchvision wheels per machine type (keep within pyproject's ranges; tests/test_packaging.py checks).
ARCH := $(shell uname -m)
ifneq ($(filter aarch64 arm64,$(ARCH)),)
TORCH_PINS ?= torch==2.9.1 torchvision==0.24.1
else ifeq ($(ARCH),x86_64)
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1
else
TORCH_PINS ?=
endif

NOTEBOOK_DIR := notebooks
START_NOTEBOOK := $(NOTEBOOK_DIR)/00_start_here.ipynb
# Lexical order = course order (00_, 01_, ...).
NOTEBOOKS = $(sort $(wildcard $(NOTEBOOK_DIR)/*.ipynb))

# The headless runner gets the notebook paths, in order, as arguments.
ifneq ($(wildcard scripts/run_notebooks.py),)
RUN_NOTEBOOKS ?= $(VPY) scripts/run_notebooks.py
else
RUN_NOTEBOOKS ?= $(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.kernel_name=python3
endif

NBVAL_SANITIZE = $(if $(wildcard $(NOTEBOOK_DIR)/sanitize.cfg),--nbval-sanitize-with $(NOTEBOOK_DIR)/sanitize.cfg)
PYTEST_ARGS ?=

# JupyterLab refuses to start as root unless told.
ALLOW_ROOT := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)
LAB_ARGS ?=

# Fashion-MNIST: the four IDX files, plain or .gz, in a folder or one of the sub-folders that
# tfa_tutorial/data/datasets.py also searches (FashionMNIST/raw, fashion-mnist, raw).
FASHION_FILES := train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte
DEBIAN_DATA_DIR := /usr/share/datasets/fashion-mnist
# $(call has_fashion,DIR): a shell condition, true when DIR (or a known sub-folder) holds all four files.
has_fashion = ( for d in "$(1)" "$(1)/FashionMNIST/raw" "$(1)/fashion-mnist" "$(1)/raw"; do \
  ok=1; for f in $(FASHION_FILES); do [ -f "$$d/$$f" ] || [ -f "$$d/$$f.gz" ] || ok=0; done; \
  [ $$ok = 1 ] && exit 0; done; exit 1 )

.PHONY: help venv data browser lab notebooks test clean distclean
.PHONY: html bench

help:
	@sed -n '3,12s/^# \{0,1\}//p' Makefile
	@echo
	@echo "Mode: fast mode when no CUDA device is available, the full setting on a GPU (tfa_tutorial/core/mode.py);"
	@echo "TFA_FAST=1 or TFA_FAST=0 overrides it, e.g. TFA_FAST=0 make lab."

# ---------------------------------------------------------------- venv
venv: $(STAMP)

$(VPY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(VPY)
ifneq ($(strip $(TORCH_PINS)),)
	$(VPY) -m pip install $(TORCH_PINS)
endif
	$(VPY) -m pip install -e ".[test]"
	@touch $@

# ---------------------------------------------------------------- data
data:
	@if [ -n "$${TFA_DATA_DIR:-}" ] && ! $(call has_fashion,$${TFA_DATA_DIR}); then \
	  echo "data: WARNING: TFA_DATA_DIR=$${TFA_DATA_DIR} does not hold all four files (plain or .gz): $(FASHION_FILES)" >&2; \
	fi; \
	if [ -n "$${TFA_DATA_DIR:-}" ] && $(call has_fashion,$${TFA_DATA_DIR}); then \
	  echo "data: Fashion-MNIST found in TFA_DATA_DIR=$${TFA_DATA_DIR}"; \
	elif $(call has_fashion,$(DEBIAN_DATA_DIR)); then \
	  echo "data: Fashion-MNIST found in $(DEBIAN_DATA_DIR)"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "data: installing Debian package dataset-fashion-mnist"; \
	  if apt-get install -y dataset-fashion-mnist || { apt-get update && apt-get install -y dataset-fashion-mnist; }; then \
	    echo "data: Fashion-MNIST installed in $(DEBIAN_DATA_DIR)"; \
	  else \
	    echo "data: WARNING: apt-get could not install dataset-fashion-mnist; continuing without it" >&2; \
	  fi; \
	else \
	  echo "data: Fashion-MNIST not found. Any one of these works:"; \
	  echo "  - Debian/Ubuntu:  sudo apt-get install dataset-fashion-mnist   (files in $(DEBIAN_DATA_DIR))"; \
	  echo "  - a folder with the four IDX files (plain or .gz): export TFA_DATA_DIR=/path/to/folder"; \
	  echo "      $(FASHION_FILES)"; \
	  echo "  - online: the package downloads it with torchvision on first use"; \
	  echo "data: continuing without it"; \
	fi

# ---------------------------------------------------------------- browser (Chromium, for tests/test_browser.py)
CHROMIUM := /usr/bin/chromium
BROWSER_HINT := sudo apt-get install chromium   (Debian/Ubuntu; then rerun make test)
browser:
	@if [ -x "$(CHROMIUM)" ]; then \
	  echo "browser: Chromium found at $(CHROMIUM)"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "browser: installing Debian package chromium (for the browser tests)"; \
	  if DEBIAN_FRONTEND=noninteractive apt-get install -y chromium || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }; then \
	    echo "browser: Chromium installed at $(CHROMIUM)"; \
	  else \
	    echo "browser: WARNING: apt-get could not install chromium; the browser tests will be skipped" >&2; \
	  fi; \
	else \
	  echo "browser: Chromium not found at $(CHROMIUM) and this is not root with apt-get: the browser tests will be skipped."; \
	  echo "browser: to run them: $(BROWSER_HINT)"; \
	fi

# ---------------------------------------------------------------- use
# The server's root is the repository (notebooks/, exercises/, docs/ all reachable from the file
# browser); the first notebook opens. The mode follows tfa_tutorial/core/mode.py (fast without CUDA).
lab: venv data
	$(VENV)/bin/jupyter lab $(ALLOW_ROOT) --ServerApp.root_dir="$(CURDIR)" $(LAB_ARGS) $(if $(wildcard $(START_NOTEBOOK)),$(START_NOTEBOOK))

notebooks: venv data
	@if [ -z "$(NOTEBOOKS)" ]; then \
	  echo "notebooks: no notebooks in $(NOTEBOOK_DIR)/ yet"; \
	else \
	  echo "notebooks: $(RUN_NOTEBOOKS) $(NOTEBOOKS)"; \
	  $(RUN_NOTEBOOKS) $(NOTEBOOKS); \
	fi

# ---------------------------------------------------------------- static HTML
# Every executed notebooks/NN_*.ipynb and exercises/NN_*.ipynb (solutions left out) -> docs/html/, plus index.html.
html: venv
	$(VPY) scripts/export_html.py

# ---------------------------------------------------------------- test
# Both stages always run; the target fails if either failed. The unit tests follow the mode rule;
# nbval forces fast mode because the committed notebook outputs are fast-mode outputs.
test: venv data browser
	@rc=0; \
	echo "test: $(VPY) -m pytest tests $(PYTEST_ARGS)"; \
	$(VPY) -m pytest tests $(PYTEST_ARGS) || rc=$$?; \
	if [ -n "$(NOTEBOOKS)" ]; then \
	  echo "test: TFA_FAST=1 TFA_STRICT=1 $(VPY) -m pytest --nbval-lax --nbval-current-env $(NBVAL_SANITIZE) $(NOTEBOOK_DIR)/ $(PYTEST_ARGS)"; \
	  TFA_FAST=1 TFA_STRICT=1 $(VPY) -m pytest --nbval-lax --nbval-current-env $(NBVAL_SANITIZE) $(NOTEBOOK_DIR)/ $(PYTEST_ARGS) || rc=$$?; \
	else \
	  echo "test: no notebooks in $(NOTEBOOK_DIR)/ yet; nbval skipped"; \
	fi; \
	if [ ! -x "$(CHROMIUM)" ]; then \
	  echo "test: NOTE: the browser tests (tests/test_browser.py) were SKIPPED: Chromium is not installed at $(CHROMIUM)."; \
	  echo "test: to run them: $(BROWSER_HINT)"; \
	fi; \
	exit $$rc

# ---------------------------------------------------------------- benchmark
# One run measures every row (ours, Captum, dattri); BENCH_ARGS e.g. "--device cuda" or "--quick".
BENCH_STAMP := $(VENV)/.tfa_tutorial-bench-installed
BENCH_ARGS ?=

$(BENCH_STAMP): pyproject.toml | $(STAMP)
	$(VPY) -m pip install -e ".[test,bench]"
	@touch $@

bench: $(BENCH_STAMP)
	$(VPY) benchmarks/attribution_speed.py $(BENCH_ARGS)

# ---------------------------------------------------------------- clean
clean:
	rm -rf build dist *.egg-info .pytest_cache
	find . \( -path ./$(VENV) -o -path ./.git \) -prune -o -type d \
	  \( -name __pycache__ -o -name .ipynb_checkpoints -o -name .pytest_cache \) -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
