# The MICrONS & V1DD connectomics book: build and test.  `make help` lists the targets.
#
# The pages only ever talk to the public CAVE datastacks. Where they run is decided here:
# `make book` and `make test` run them under `python -m offline_cave exec`, which starts a
# server with the synthetic sample and gives the command an isolated HOME whose caveclient
# configuration points there; `make test-live` runs them against the real services.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON ?= python3.11
UV_VERSION := 0.13.9
VENV := .venv
PY := $(VENV)/bin/python
# The venv is (re)installed whenever the lock (or the project metadata) changes.
LOCK_HASH := $(shell cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)
STAMP := $(VENV)/.installed-$(LOCK_HASH)

SAMPLE := sample-data
BUILD := _build
LOGS := $(BUILD)/logs
JOBS ?= 2
NB_TIMEOUT ?= 600
# Outputs of one notebook run: the executed notebooks, the provenance record shown in the
# banner of every page, and the log. test-live writes its own set, never mixed with these.
NB_OUT := $(BUILD)/nbmake
PROVENANCE := $(BUILD)/provenance.json
NB_LOG := $(LOGS)/notebooks.log
EXPECT_SOURCE := synthetic
# extra arguments of `connectomics_book.build.pages` choosing the notebooks (test-live: --without-nwb)
PAGE_FILTER ?=
OFFLINE := $(PY) -m offline_cave exec --data $(SAMPLE) --

# Plain (uncoloured) tracebacks from the kernels; a matplotlib cache that outlives the
# temporary HOME of `offline_cave exec`. Never set MPLBACKEND=Agg: kernels inherit it and
# every inline figure silently disappears.
export IPYTHONDIR := $(CURDIR)/.ci/ipython
export MPLCONFIGDIR := $(CURDIR)/$(BUILD)/matplotlib
export PLOTLY_RENDERER := notebook_connected
export PYDEVD_DISABLE_FILE_VALIDATION := 1
unexport MPLBACKEND

# pytest's closing line ("=== N passed in Xs ===") in a log
SUMMARY = grep -E '^=+ .*(passed|failed|error|skipped|no tests ran).* =+$$' $(1) | tail -n 1
# run a sub-make target and print how long it took
STEP = s=$$(date +%s); $(MAKE) $(1); echo "[time] $(1): $$(( $$(date +%s) - s )) s"

.PHONY: help venv sample book test test-live unit notebooks html check-html screenshot \
	lock environment.yml ipynb clean _offline-pages _pages test-classroom viewer-check \
	check-claims

help:
	@echo "make venv       create/refresh $(VENV) from requirements.lock (uv $(UV_VERSION))"
	@echo "make sample     generate the synthetic sample of the datastacks into $(SAMPLE)/"
	@echo "make book       execute every page once against the sample; HTML in $(BUILD)/html"
	@echo "make test       unit tests + notebooks + book + checks of the HTML (what CI runs)"
	@echo "make check-claims    what the prose says of results, checked on the executed notebooks"
	@echo "make viewer-check    the Neuroglancer links of a page rendered in headless Chromium"
	@echo "make test-classroom  an offline class played: serve, two students configure, share the pages, undo"
	@echo "make test-colab every Colab twin in a fresh venv holding exactly its install line"
	@echo "make test-live  the notebooks against the real public datastacks (network + token)"
	@echo "make lock       recompile requirements.lock from requirements.in (needs PyPI)"
	@echo "make environment.yml   derive the conda environment from the lock"
	@echo "make ipynb      rewrite the .ipynb twins of the pages (what the Colab buttons open)"
	@echo "make clean      remove $(BUILD)/"

venv: $(STAMP)
$(STAMP):
	@echo "[venv] installing requirements.lock into $(VENV)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/uv --version 2>/dev/null | grep -qx 'uv $(UV_VERSION)' \
		|| $(PY) -m pip install -q --disable-pip-version-check uv==$(UV_VERSION) \
		2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)
	$(VENV)/bin/uv pip install -q --python $(PY) --compile-bytecode -r requirements.lock
	$(VENV)/bin/uv pip install -q --python $(PY) -e . --no-deps
	rm -f $(VENV)/.installed-*
	touch $@

sample: venv
	$(PY) -m offline_cave generate --out $(SAMPLE)

# ---- the book: record provenance, execute every page once, build from those outputs ----

book: venv sample
	@$(call STEP,_offline-pages)

_offline-pages:
	mkdir -p $(LOGS)
	$(OFFLINE) $(MAKE) _pages

# Runs inside the environment the pages run in (offline_cave exec, or the real services).
_pages: notebooks html

notebooks:
	mkdir -p $(LOGS) $(MPLCONFIGDIR)
	$(PY) -m connectomics_book.build.provenance $(PROVENANCE) --expect $(EXPECT_SOURCE)
	$(PY) -m connectomics_book.build.pages --notebooks $(PAGE_FILTER) > $(BUILD)/notebook-pages.txt
	test -s $(BUILD)/notebook-pages.txt || { echo "[notebooks] _toc.yml lists no notebook"; exit 1; }
	rm -rf $(NB_OUT)
	NB_OUT_DIR=$(NB_OUT) $(PY) -m pytest --nbmake -n $(JOBS) --nbmake-timeout=$(NB_TIMEOUT) \
		--timeout=1800 --overwrite --durations=0 $$(cat $(BUILD)/notebook-pages.txt) \
		2>&1 | tee $(NB_LOG)

html:
	$(PY) .ci/seed_jupyter_cache.py $(NB_OUT) . $(BUILD)/.jupyter_cache
	$(VENV)/bin/jupyter-book build . --all -W -n 2>&1 | tee $(LOGS)/book.log
	@if grep -n "Executing notebook" $(LOGS)/book.log; then \
		echo "[html] the build executed a notebook that nbmake had not: see above"; exit 1; fi

# ---- tests ----

test:
	@t0=$$(date +%s); mkdir -p $(LOGS); \
	$(call STEP,venv); \
	$(call STEP,sample); \
	$(call STEP,unit); \
	$(call STEP,_offline-pages); \
	$(call STEP,check-claims); \
	$(call STEP,check-html); \
	$(call STEP,screenshot); \
	$(call STEP,viewer-check); \
	$(call STEP,test-classroom); \
	echo "[time] make test total wall time: $$(( $$(date +%s) - t0 )) s"; \
	echo "unit tests:"; $(call SUMMARY,$(LOGS)/unit.log); \
	echo "notebooks:"; $(call SUMMARY,$(NB_LOG))

unit: venv
	mkdir -p $(LOGS)
	$(PY) -m pytest tests -n $(JOBS) 2>&1 | tee $(LOGS)/unit.log

# README "Teach the course offline", played: a server, two student HOMEs that configure, run
# every page (V1DD sessions downloaded from the server) and unconfigure, byte-identical after.
test-classroom: venv sample
	$(PY) .ci/classroom_check.py --data $(SAMPLE) --jobs $(JOBS)

# What the prose says of a page's results, checked on the notebooks the step before executed.
check-claims:
	CLAIMS_REQUIRE_EXECUTED=1 NB_OUT_DIR=$(NB_OUT) $(PY) -m pytest -q \
		tests/connectomics_book/test_executed_claims.py

check-html:
	$(PY) .ci/check_html.py $(BUILD)/html $(PROVENANCE)

screenshot:
	@command -v chromium || command -v chromium-browser || command -v google-chrome || { \
		echo "[screenshot] installing chromium with apt-get"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends chromium >/dev/null; }
	$(PY) .ci/screenshot.py --site $(BUILD)/html $(BUILD)/screenshots

# Neuroglancer links of chapters/look/01_neuroglancer.md opened in headless Chromium (software
# WebGL) against a server of the sample; fails when the viewer's canvas is blank or shows no
# segmentation (chromium comes with the screenshot step).
viewer-check: venv sample
	$(PY) .ci/viewer_check.py --data $(SAMPLE) $(BUILD)/viewer-check

# The same notebooks against the real public datastacks; fails within seconds without
# network or token. Its outputs go to their own files and never into the book.
test-live:
	@t0=$$(date +%s); \
	$(PYTHON) .ci/check_live_access.py; \
	$(MAKE) venv; \
	if [ -z "$${V1DD_NWB_DIR:-}" ]; then \
		echo "test-live: V1DD_NWB_DIR is not set, so the pages that read the V1DD NWB" \
			"sessions are left out (point it at the public session files to run them)"; \
		filter=--without-nwb; \
	else filter=; fi; \
	$(MAKE) notebooks EXPECT_SOURCE=public NB_OUT=$(BUILD)/nbmake-live PAGE_FILTER=$$filter \
		PROVENANCE=$(BUILD)/provenance-live.json \
		NB_LOG=$(LOGS)/notebooks-live.log; \
	echo "[time] make test-live total wall time: $$(( $$(date +%s) - t0 )) s"; \
	$(call SUMMARY,$(LOGS)/notebooks-live.log)

# ---- maintenance ----

lock: venv
	$(VENV)/bin/uv pip compile requirements.in --python-version 3.11 --no-header \
		-o requirements.lock
	$(PY) tools/make_environment.py

environment.yml: requirements.lock
	$(PY) tools/make_environment.py

ipynb: venv
	$(PY) tools/make_ipynb.py

clean:
	rm -rf $(BUILD)

# The Colab twins, each in a fresh venv holding exactly its install line (the course package
# from this checkout instead of git+REPOSITORY_URL, plus nbmake/pytest to run them), executed
# against the sample with `offline_cave exec`: tools/colab_check.py reports pass/fail per twin.
.PHONY: test-colab
test-colab: venv sample
	$(PY) tools/colab_check.py --data $(SAMPLE)
