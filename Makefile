# Two commands on a fresh machine: `make demo` and `make test`.
# Each one creates the venv, installs the Python packages (pinned by
# constraints.txt) and, when missing, the Debian packages, then runs.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test bench clean system-deps services

setup: $(STAMP) system-deps

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

system-deps:
	@scripts/system-deps.sh

services:
	@scripts/services.sh

demo: setup
	$(BIN)/breachwatch demo

test: setup services
	$(BIN)/pytest -q

bench: setup services
	$(BIN)/pip install --quiet -c constraints.txt -e '.[bench]'
	@echo "see docs/BENCHMARKS.md for the individual benchmark commands"

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache demo-out breachwatch.duckdb breachwatch.duckdb.*
