# The README's commands. `make test` and `make run` work on a fresh machine with python3.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install test run bench tables

$(BIN)/fhir-server: setup.cfg pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/fhir-server

test: install
	$(BIN)/python -m pytest

run: install
	$(BIN)/fhir-server serve --demo

bench: install
	$(BIN)/python bench/bench_core.py

# Regenerate resources/r4_structure.json from ../shared/fixtures/r4-definitions.
tables:
	$(PY) tools/gen_r4_tables.py
