# citytwin — `make run` builds/runs the default city, `make test` runs the tests.
SHELL := /bin/bash
VENV  := .venv
VPY   := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# Find a Python >= 3.12 by *running* each candidate (pyenv shims on PATH exist but fail until selected).
PYENV_ROOT ?= $(shell pyenv root 2>/dev/null || echo $$HOME/.pyenv)
CANDIDATES := $(CITYTWIN_PYTHON) python3.13 python3.12 python3 \
              $(sort $(wildcard $(PYENV_ROOT)/versions/3.1[2-9]*/bin/python3)) \
              /usr/bin/python3.13 /usr/bin/python3.12 /usr/local/bin/python3.13 /usr/local/bin/python3.12
FIND_PY = for c in $(CANDIDATES); do \
    if "$$c" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; then \
        command -v "$$c" 2>/dev/null || echo "$$c"; exit 0; fi; done; exit 1

.PHONY: run test bench venv lint typecheck check clean-cache

$(STAMP): pyproject.toml
	@py=$$($(FIND_PY)) || { echo "citytwin needs Python >= 3.12; none of these ran: $(CANDIDATES)." >&2; \
	    echo "Install one (e.g. 'pyenv install 3.12') or set CITYTWIN_PYTHON=/path/to/python3.12." >&2; exit 1; }; \
	echo "Using $$py ($$($$py -V))"; \
	[ -x $(VPY) ] || "$$py" -m venv $(VENV); \
	$(VPY) -m pip install -q --upgrade pip && \
	$(VPY) -m pip install -q -e '.[app,distributed,dev]' && touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/citytwin app

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q

bench: $(STAMP)
	@for b in benchmarks/*.py; do echo "== $$b"; $(VPY) $$b || exit 1; done

lint: $(STAMP)
	$(VENV)/bin/ruff check citytwin tests benchmarks

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# what CI runs: style, types, then the tests
check: lint typecheck test

clean-cache:
	rm -rf .citytwin-cache
