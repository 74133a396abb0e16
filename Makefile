# Two commands set everything up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PERSONAS_HOME ?= $(CURDIR)/.personas
export PERSONAS_HOME
export DAGSTER_HOME := $(PERSONAS_HOME)/dagster

.PHONY: install demo test validate ui clean

# The venv is rebuilt from scratch when it is missing or pyproject.toml changed.
$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/personas demo

validate: install
	$(BIN)/personas init > /dev/null
	$(BIN)/dagster definitions validate -w workspace.yaml

test: install validate
	$(BIN)/pytest -q

ui: install
	$(BIN)/personas init
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

clean:
	rm -rf $(PERSONAS_HOME) dbt/target dbt/logs
