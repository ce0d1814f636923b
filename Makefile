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

# The read benchmark's load generator is wrk (Debian's package): a C client that leaves the
# server most of the second core. Installed here when missing and apt-get can (root); without
# it bench_core.py falls back to Python client processes and says so.
bench: install
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  (apt-get install -y -qq wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk >/dev/null)); } || \
	  echo "wrk not installed: reads are measured with Python client processes"
	$(BIN)/python bench/bench_core.py

# Regenerate resources/r4_structure.json from ../shared/fixtures/r4-definitions.
tables:
	$(PY) tools/gen_r4_tables.py
