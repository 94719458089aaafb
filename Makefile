# paper-notes: two commands for a fresh machine (README "Quick start").
#   make serve   set up .venv with the docs extra, serve the site on http://127.0.0.1:8000
#   make test    set up .venv with the test extra, run the whole pytest suite
#   make test-fast   the developer loop: no site builds, no browser, no torchrun or subprocess runs
#   make build   strict build of the site into site/
#   make gpu-check   on a CUDA machine: the benchmarks' CUDA parts and the GPU-marked tests
# .venv is (re)installed whenever pyproject.toml is newer than the last install.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Silence two banners that third-party packages print on every mkdocs run.
export DISABLE_MKDOCS_2_WARNING := true
export NO_MKDOCS_2_WARNING := 1

.PHONY: serve build test test-fast check gpu-check clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
		|| { echo "paper-notes needs Python >= 3.11; $(PYTHON) is $$($(PYTHON) --version 2>&1)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

# --no-compile: skip byte-compiling every installed file (torch alone has thousands); Python
# compiles the modules it imports on first use. Set-up on a 2-core machine: 4 min 45 s -> 2 min 45 s.
$(VENV)/.installed-docs: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-compile -e '.[docs]'
	@touch $@

# The SAM 2 anchor (`sam2`, in the test extra) is an sdist whose build requirements name torch: an
# isolated build would first install a second torch with all its CUDA wheels (GBs) only to run a
# setup.py that needs neither when SAM2_BUILD_CUDA=0 (the optional extension only fills holes in
# masks, and is never built here). So it is built first, in the venv, without isolation; the install
# of the extra then finds it there. The version is read from pyproject.toml.
SAM2_REQ = $(BIN)/python -c 'import tomllib; print(next(r for r in tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["test"] if r.startswith("sam2")))'

# Anchors whose own requirements the tests never import (carvekit: a web server stack and OpenCV), or pin
# below the project's (pysodmetrics: numpy<2.3.5, scikit-image<0.26, which pip would downgrade), are
# installed without them; the list is pyproject.toml's [tool.paper-notes] no-deps-anchors (about 2 s).
NO_DEPS_REQS = $(BIN)/python -c 'import tomllib; print(" ".join(tomllib.load(open("pyproject.toml", "rb"))["tool"]["paper-notes"]["no-deps-anchors"]))'

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-compile 'setuptools>=77.0.3'
	SAM2_BUILD_CUDA=0 $(BIN)/python -m pip install --quiet --disable-pip-version-check --no-compile \
		--no-build-isolation --no-deps "$$($(SAM2_REQ))"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-compile --no-deps $$($(NO_DEPS_REQS))
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-compile -e '.[test]'
	@touch $@ $(VENV)/.installed-docs

serve: $(VENV)/.installed-docs
	$(BIN)/mkdocs serve --dev-addr 127.0.0.1:8000

build: $(VENV)/.installed-docs
	$(BIN)/mkdocs build --strict --site-dir site

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest

test-fast: $(VENV)/.installed-test
	$(BIN)/python -m pytest -m "not slow and not browser and not subprocess"

check: $(VENV)/.installed-docs
	$(BIN)/notes check

# The steps, their time limits and the summary live in scripts/gpu-check.sh, which also runs on
# a CUDA machine that has PyTorch but no package index (see benchmarks/README.md).
gpu-check: $(VENV)/.installed-test
	bash scripts/gpu-check.sh $(BIN)/python

clean:
	rm -rf site .pytest_cache .hypothesis
