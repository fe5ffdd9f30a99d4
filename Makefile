# TAP: the two Quick start commands and the tools around them. See README.md.
SHELL := /bin/bash
VENV  := .venv
TAP   := $(VENV)/bin/tap
STAMP := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)

.PHONY: demo test test-fast lint system-deps go-tools bench faults evaluate report stop clean

$(STAMP): pyproject.toml
	@command -v python3 >/dev/null || { echo "python3 (3.11+) is needed"; exit 1; }
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e ".[test]"
	@rm -f $(VENV)/.installed-* && touch $@

system-deps:
	@scripts/system-deps.sh

## The compose checks' Go tools: compose-go and the real `docker compose` CLI, built from their
## modules into .cache/ (first run only: about 4 minutes), before any test's timeout starts.
go-tools:
	@tests/tools/compose-validate/build.sh >/dev/null
	@tests/tools/compose-cli/build.sh >/dev/null

## The native demo: real Kafka, Elasticsearch and Spark, simulated shop, CEO summary.
demo: system-deps $(STAMP)
	$(TAP) demo

## Every test: Python (unit, contract, end-to-end on the real engines) and the plugin's PHP tests.
test: system-deps $(STAMP) go-tools
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/pytest

## The fast loop: unit and contract tests that start no engine (no Kafka, Elasticsearch, Spark).
test-fast: $(STAMP) go-tools
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest -m "not engines and not spark"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: system-deps $(STAMP)
	$(TAP) bench

faults: system-deps $(STAMP)
	$(TAP) faults

evaluate: $(STAMP)
	$(TAP) model evaluate

report: $(STAMP)
	$(TAP) report html --out reports/ceo.html

stop: $(STAMP)
	$(TAP) stack stop

clean:
	rm -rf .run reports .pytest_cache .ruff_cache
