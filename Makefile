# Quick start: `make run` serves config/relay.toml on SQLite; `make test` runs everything CI runs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CONFIG ?= config/relay.toml

.PHONY: run test lint pg browser unit integration acceptance bench fuzz soak format clean

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
	$(PY) -m ruff check relay forwarders tests bench scripts
	$(PY) -m ruff format --check relay forwarders tests bench scripts
	$(PY) -m mypy relay forwarders
	$(VENV)/bin/lint-imports
	$(VENV)/bin/deptry .

# The PostgreSQL tests start a throwaway server (tests/pg_cluster.py); this installs
# Debian's postgresql package first when it is missing (needs root).
pg: $(VENV)/.installed-dev
	$(PY) -m tests.pg_cluster install

# The browser tests drive Debian's chromium with Playwright (tests/browser.py); this
# installs the package first when it is missing (needs root).
browser: $(VENV)/.installed-dev
	$(PY) -m tests.browser install

test: lint pg browser
	$(PY) -m pytest tests

# A longer schemathesis run against /openapi.json (`make test` runs 15 examples each).
fuzz: $(VENV)/.installed-dev
	RELAY_FUZZ_EXAMPLES=500 $(PY) -m pytest -p no:cacheprovider --timeout=3600 \
		tests/acceptance/test_schema_fuzz.py

bench: $(VENV)/.installed-dev
	$(PY) bench/run.py

# A minute of steady ingest with seconds-long retention: the database must stay bounded.
soak: $(VENV)/.installed-dev
	$(PY) scripts/soak.py

format: $(VENV)/.installed-dev
	$(PY) -m ruff check --fix relay forwarders tests bench scripts
	$(PY) -m ruff format relay forwarders tests bench scripts

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
