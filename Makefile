# One entry point. `make test` installs whatever is missing, then lints and tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint unit demo bench clean help

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

install: $(STAMP)  ## venv, package, pinned Pulumi CLI and linters (cached after the first run)
	bash scripts/install-pulumi.sh
	bash scripts/install-tools.sh

lint: install  ## ruff and mypy
	$(BIN)/ruff check orchestrator programs loadtests tests bench scripts
	$(BIN)/ruff format --check orchestrator programs loadtests tests bench scripts
	$(BIN)/mypy

unit: install  ## pytest only
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/pytest -q --durations=15

test: lint unit  ## install, lint, test: the README's test command and what .ci/run calls

demo: install  ## the local environment end to end: deploy v1, promote v2, reject a bad v3
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m orchestrator.demo

bench: install  ## benchmarks -> docs/performance.md
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python bench/run_all.py

clean:  ## remove everything `install` and the local environment created
	-$(BIN)/orchestrator destroy --env local --yes 2>/dev/null
	rm -rf $(VENV) .tools .edgeship reports
