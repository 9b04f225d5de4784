# The two commands of the README are `make book` and `make test`; everything else is a helper.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MATHJAX := _vendor/mathjax/tex-chtml.js
MATHJAX_VERSION := 3.2.2
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))
JB_FLAGS := -W -n --keep-going
# the scale in force: $BOOK_SCALE, else full with a CUDA GPU and smoke without (flatbias.scale)
SCALE_CMD = $(BIN)/python -c 'from flatbias.scale import get_scale; print(get_scale())'

.PHONY: book book-stored test test-unit test-notebooks test-site notebooks records sync bench clean help

help:
	@echo "make book         build the book, executing every notebook at the scale in force (BOOK_SCALE=smoke|full)"
	@echo "make test         unit tests + nbval on every notebook (smoke scale)"
	@echo "make book-stored  build the book from the outputs stored in the notebooks (no execution)"
	@echo "make test-site    browser test of the built site (needs Debian's chromium)"
	@echo "make notebooks    sync the .py/.ipynb pairs and re-execute them at smoke scale (before committing)"
	@echo "make records      rerun at paper scale every chapter whose record is missing or stale (CHAPTERS='01 08', JOBS=2; default: the cores, at most 4)"

# --- environment: a venv from the repo's own pinned files ---------------------------------------
$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	@touch $@

# an offline copy of MathJax 3 (from the npm registry), so pages typeset math without a CDN
$(MATHJAX):
	@rm -rf _vendor/mathjax _build/mathjax-pack && mkdir -p _build/mathjax-pack _vendor
	cd _build/mathjax-pack && npm pack --silent mathjax@$(MATHJAX_VERSION) >/dev/null && tar xzf mathjax-*.tgz
	mkdir -p _vendor/mathjax/output && cd _build/mathjax-pack/package/es5 && \
	  cp -r tex-chtml.js input a11y ui adaptors sre ../../../../_vendor/mathjax/ && cp -r output/chtml output/chtml.js ../../../../_vendor/mathjax/output/
	rm -rf _build/mathjax-pack
	@test -f $@

# --- the book ---------------------------------------------------------------------------------
book: $(STAMP) $(MATHJAX)
	@scale=$$($(SCALE_CMD)); echo "building the book at scale '$$scale' into _build/$$scale"; \
	BOOK_SCALE=$$scale FLATBIAS_RECORD_DIR=$(CURDIR)/_build/$$scale/records \
	  $(BIN)/jupyter-book build . $(JB_FLAGS) --path-output _build/$$scale; \
	echo "open _build/$$scale/_build/html/index.html"

book-stored: $(STAMP) $(MATHJAX)
	@mkdir -p _build
	$(BIN)/python -c "import yaml; c = yaml.safe_load(open('_config.yml')); c['execute']['execute_notebooks'] = 'off'; yaml.safe_dump(c, open('_build/_config_stored.yml', 'w'), sort_keys=False)"
	$(BIN)/jupyter-book build . $(JB_FLAGS) --config _build/_config_stored.yml --path-output _build/stored

# --- tests ------------------------------------------------------------------------------------
# The notebooks run with one thread per kernel: on 2 shared cores, torch's OpenMP threads spin against any other
# load (measured: one chapter-18 cell 8x slower with 2 threads than with 1 at load 4), and one thread is how the
# stored outputs and the paper-scale records were made. The unit tests keep torch's default threads.
test: $(STAMP)
	BOOK_SCALE=smoke $(BIN)/python -m pytest tests -p no:cacheprovider --durations=15
	BOOK_SCALE=smoke OMP_NUM_THREADS=1 $(BIN)/python -m pytest $(NOTEBOOKS) --nbval-lax --nbval-current-env --nbval-cell-timeout=900 -p no:cacheprovider --durations=15

test-unit: $(STAMP)
	$(BIN)/python -m pytest tests

test-notebooks: $(STAMP)
	BOOK_SCALE=smoke OMP_NUM_THREADS=1 $(BIN)/python -m pytest $(NOTEBOOKS) --nbval-lax --nbval-current-env --nbval-cell-timeout=900

SITE ?= _build/stored/_build/html
test-site: $(STAMP)
	FLATBIAS_SITE=$(SITE) $(BIN)/python -m pytest -m site tests/test_site.py -p no:cacheprovider

# --- authoring --------------------------------------------------------------------------------
sync: $(STAMP)
	$(BIN)/jupytext --sync notebooks/*.py

notebooks: sync
	for nb in $(NOTEBOOKS); do BOOK_SCALE=smoke OMP_NUM_THREADS=1 $(BIN)/jupyter execute --inplace $$nb; done
	@touch notebooks/*.ipynb

# paper-scale records (results/chapters/*.json) of every chapter that is missing or stale, from a clean commit
# (the one command that writes results/chapters; a build at full scale writes _build/full/records); then commit
# the records and `make notebooks`
CHAPTERS ?=
JOBS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); [ $$n -gt 4 ] && n=4; echo $$n)  # chapters at once, one thread each
RECORDS_FLAGS ?=
records: $(STAMP)
	$(BIN)/python -m flatbias.chapter_record --jobs $(JOBS) $(RECORDS_FLAGS) $(CHAPTERS)

bench: $(STAMP)
	for b in benchmarks/*.py; do $(BIN)/python $$b; done

clean:
	rm -rf _build .pytest_cache
