# Quick start: `make run` serves config/relay.toml on SQLite; `make test` runs everything CI runs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CONFIG ?= config/relay.toml

.PHONY: run test lint pg unit integration acceptance bench format clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev,postgres]'
	@touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(VENV)/bin/relay serve --config $(CONFIG)

lint: $(VENV)/.installed-dev
	$(PY) -m ruff check relay forwarders tests bench
	$(PY) -m ruff format --check relay forwarders tests bench
	$(PY) -m mypy relay forwarders

# The PostgreSQL tests start a throwaway server (tests/pg_cluster.py); this installs
# Debian's postgresql package first when it is missing (needs root).
pg: $(VENV)/.installed-dev
	$(PY) -m tests.pg_cluster install

test: lint pg
	$(PY) -m pytest tests

bench: $(VENV)/.installed-dev
	$(PY) bench/run.py

format: $(VENV)/.installed-dev
	$(PY) -m ruff check --fix relay forwarders tests bench
	$(PY) -m ruff format relay forwarders tests bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
