# The two set-up commands of the README are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH):/usr/sbin:/usr/local/sbin

.PHONY: run test lint pytest bench bench-smoke clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamps, so a changed pyproject.toml reinstalls and an unchanged one costs nothing.
$(VENV)/.run-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[embedded]'
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.run-installed

## make run: the all-in-one default (embedded broker, core, simulated city, console)
run: $(VENV)/.run-installed
	$(BIN)/ansim

## make test: lint, type-check, layer contracts, then the whole test suite
test: $(VENV)/.test-installed lint pytest

lint: $(VENV)/.test-installed
	$(BIN)/ruff check console widgets protocols tests bench
	$(BIN)/ruff format --check console widgets protocols tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

pytest: $(VENV)/.test-installed
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

bench: $(VENV)/.test-installed
	$(BIN)/python -m bench.run

bench-smoke: $(VENV)/.test-installed
	$(BIN)/python -m bench.run --smoke

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
