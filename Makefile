# Two commands set everything up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PERSONAS_HOME ?= $(CURDIR)/.personas
export PERSONAS_HOME
export DAGSTER_HOME := $(PERSONAS_HOME)/dagster
# MLflow sends usage events from every process unless told not to (docs/privacy.md); the package sets it too.
export MLFLOW_DISABLE_TELEMETRY ?= true

.PHONY: install demo scale-demo lint test validate ui mlflow-ui docs screenshots serve bench-api bench bench-histories clean

# The venv is rebuilt from scratch when it is missing or pyproject.toml changed.
$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,scale]'
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/personas demo

# The demo's sample through the embedded and the production profile: a throwaway PostgreSQL on 127.0.0.1 (Debian's
# postgresql, installed with apt-get when missing) holds the production home's Dagster and MLflow; tables compared.
scale-demo: install
	$(BIN)/personas scale-demo

validate: install
	$(BIN)/personas init > /dev/null
	$(BIN)/dagster definitions validate -w workspace.yaml

# ruff over the Python, sqlfluff over the dbt SQL (rules in pyproject.toml and dbt/.sqlfluff).
lint: install
	$(BIN)/ruff check dagster_project tests
	$(BIN)/sqlfluff lint dbt --processes 2

# Two worker processes, one test module each at a time (a module's fixtures build its home once): 785 s -> 522-617 s of
# pytest on this 2-core machine. Modules only read the shared session home, so their order does not matter.
test: install lint validate
	$(BIN)/pytest -q -n 2 --dist loadfile

ui: install
	$(BIN)/personas init
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

# MLflow runs, registered models and artifacts of the same home (SQLite store, file artifacts).
# Without its GenAI job workers, the UI adds no background writer to the single-writer SQLite store.
mlflow-ui: install
	$(BIN)/personas init > /dev/null
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(BIN)/mlflow ui --backend-store-uri sqlite:///$(PERSONAS_HOME)/mlflow/mlflow.db \
		--default-artifact-root $(PERSONAS_HOME)/mlflow/artifacts --host 127.0.0.1 --port 5000

docs: install
	$(BIN)/personas docs

# Refreshes docs/screenshots/ from a headless Chromium over a freshly materialised small home.
screenshots: install
	PERSONAS_SCREENSHOTS=$(CURDIR)/docs/screenshots $(BIN)/pytest -q tests/test_ui_browser.py

# The Persona API over this home's champion model (http://127.0.0.1:8000, docs at /docs).
serve: install
	$(BIN)/personas serve

# p50/p95/p99 of the API's POST with 20 events, 200 requests; builds the demo home first if it has no champion.
bench-api: install
	$(BIN)/personas bench-api

# One generated day of 1M events materialised end to end three times (the median run detailed), per-stage time and
# memory, references, then histories of many small days (--histories, default 200x500,30x30000, three runs each) and
# the fixed cost per day; writes BENCHMARKS.md. BENCH_ARGS: e.g. --sizes 100000,1000000 for the growth sweep,
# --repeat 5, --scale 10m for ten million events, --histories '' to leave the histories out.
BENCH_ARGS ?= --sizes 100000
bench: install
	$(BIN)/python -m dagster_project.bench $(BENCH_ARGS)

# Only the many-small-days histories, rewriting only that section of BENCHMARKS.md.
HISTORIES ?= 30x500,60x500,30x2000
bench-histories: install
	$(BIN)/python -m dagster_project.bench --histories-only --histories $(HISTORIES) --repeat 1

clean:
	rm -rf $(PERSONAS_HOME) dbt/target dbt/logs
