# SkyMarshal API — developer entry points. `make run` starts the local stack, `make test` runs
# every check. Both install what they need first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed

.PHONY: help install run test lint typecheck security pytest bench bench-long audit load clean

help:
	@echo "make run    - start DynamoDB Local, the local SkyMarshal runtime and the API"
	@echo "make test   - install, lint, type-check, security-scan and run every test"
	@echo "make bench  - run the benchmarks and print their numbers"
	@echo "make bench-long - a 5-minute background run, followed by polling and by wait"
	@echo "make audit  - pip-audit the locked dependencies (needs the vulnerability service)"

$(STAMP): requirements-dev.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements-dev.lock
	@touch $@

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

install: $(STAMP) $(NPM_STAMP)

run: install
	$(BIN)/python -m scripts.run_local $(RUN_ARGS)

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

security: $(STAMP)
	$(BIN)/bandit -q -ll -c pyproject.toml -r skymarshal_api sessions invocations local_runtime scripts

# Pytest's own exit status decides: 5 (no tests collected) fails the build like any other.
pytest: install
	SKYMARSHAL_ENV=test $(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck security pytest

bench: install
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

# One 5-minute background run followed by polling and by repeated wait calls.
bench-long: install
	$(BIN)/python -m benchmarks.long_run $(BENCH_ARGS)

audit: $(STAMP)
	$(BIN)/python -m scripts.audit

clean:
	rm -rf $(VENV) node_modules .local .mypy_cache .ruff_cache
