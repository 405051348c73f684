# SkyMarshal API — developer entry points. `make run` starts the local stack, `make test` runs
# every check. Both install what they need first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.13
# A virtualenv of another Python (made before the move to 3.13) is made again.
SAME_PYTHON = -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))'
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed
# The Lambda package is built from its own virtualenv (requirements-lambda.lock), never from
# the development one; uv installs manylinux2014 x86_64 wheels into it (see scripts/package.py).
LAMBDA_VENV := .venv-lambda
LAMBDA_STAMP := $(LAMBDA_VENV)/.installed
LAMBDA_PLATFORM := x86_64-manylinux_2_17
PACKAGE := .local/package/skymarshal-api-dev.zip
WORKER_PACKAGE := .local/package/skymarshal-api-dev-worker.zip

# Debian's Chromium, for the test that loads Swagger UI and Redoc in a headless browser.
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: help install run test lint typecheck security schema schema-check openapi-examples pytest package package-api package-worker bench bench-long audit load clean

help:
	@echo "make run    - start DynamoDB Local, the local SkyMarshal runtime and the API"
	@echo "make test   - install, lint, type-check, security-scan and run every test"
	@echo "make package - build the dev stage's Lambda package offline (zappa package dev)"
	@echo "make bench  - run the benchmarks and print their numbers"
	@echo "make bench-long - a 5-minute background run, followed by polling and by wait"
	@echo "make load   - the load test: 100 users on the local stack, runs of about 2 s"
	@echo "make schema - regenerate openapi.yaml from the code (commit it with the change)"
	@echo "make audit  - pip-audit the locked dependencies (needs the vulnerability service)"

$(STAMP): requirements-dev.lock clients/python/pyproject.toml
	@$(BIN)/python $(SAME_PYTHON) 2>/dev/null || rm -rf $(VENV)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements-dev.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e ./clients/python
	@touch $@

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(LAMBDA_STAMP): requirements-lambda.lock $(STAMP)
	@$(LAMBDA_VENV)/bin/python $(SAME_PYTHON) 2>/dev/null || rm -rf $(LAMBDA_VENV)
	@test -x $(LAMBDA_VENV)/bin/python || $(PYTHON) -m venv --without-pip $(LAMBDA_VENV)
	$(BIN)/uv pip sync --quiet --python $(LAMBDA_VENV)/bin/python \
		--python-platform $(LAMBDA_PLATFORM) requirements-lambda.lock
	@touch $@

install: $(STAMP) $(NPM_STAMP) $(LAMBDA_STAMP)

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium


run: install
	$(BIN)/python -m scripts.run_local $(RUN_ARGS)

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/cfn-lint infrastructure/*.yaml
	$(BIN)/shellcheck scripts/*.sh

# mypy's Django plugin loads the settings: the test environment's, like the tests.
typecheck: $(STAMP)
	SKYMARSHAL_ENV=test $(BIN)/mypy

security: $(STAMP)
	$(BIN)/bandit -q -ll -c pyproject.toml -r skymarshal_api health sessions invocations local_runtime scripts clients/python/skymarshal_client

# The OpenAPI schema. `make schema` writes it to openapi.yaml; `make schema-check` (part of
# `make test`) validates it and fails on any drf-spectacular warning. A test fails when
# openapi.yaml differs from what the code generates.
SCHEMA_COMMAND := SKYMARSHAL_ENV=test $(BIN)/python manage.py spectacular --validate --fail-on-warn

schema: $(STAMP)
	$(SCHEMA_COMMAND) --file openapi.yaml

schema-check: $(STAMP)
	$(SCHEMA_COMMAND) > /dev/null

# Re-record the invoke response examples of the schema from a real run (then `make schema`).
openapi-examples: install
	$(BIN)/python -m scripts.openapi_examples


# `zappa package dev` and `zappa package dev_worker` (the background runs' function: the
# same code, its own baked-in settings), offline (placeholder AWS credentials, no network):
# the packages the tests drive and `scripts/deploy_api.sh` deploys.
package: package-api package-worker

package-api: $(LAMBDA_STAMP)
	$(BIN)/python -m scripts.package dev --output $(PACKAGE)

package-worker: $(LAMBDA_STAMP)
	$(BIN)/python -m scripts.package dev_worker --output $(WORKER_PACKAGE)

# Pytest's own exit status decides: 5 (no tests collected) fails the build like any other,
# and so does a collection error (exit 1), with workers or without.
# SKYMARSHAL_PACKAGE, SKYMARSHAL_WORKER_PACKAGE: the tests of the Lambda packages use the
# ones `make package` built.
# The suite runs in PYTEST_WORKERS processes (pytest-xdist; 0 runs it in this one). Each
# worker starts its own servers (DynamoDB Local, runtimes, API servers, Chromium) on ports
# picked at run time and keeps its files under its own --basetemp directory; a test file
# runs whole on one worker (--dist loadfile: a module's servers and tables are started once),
# the files holding a test marked slow first (tests/conftest.py), not the files with the most
# tests first (--no-loadscope-reorder).
# The tests mostly wait on servers, so more workers than cores pays on a 2-core machine
# (measured there, warm, one run each: 3 workers 416 s, 4 workers 399 s).
# PYTHONPYCACHEPREFIX: every process of the run (each worker, and each server a test starts)
# reads the bytecode the first one compiled, kept under .local/pycache, instead of compiling
# Django, boto3 and the rest from source again (PYTHONDONTWRITEBYTECODE would forbid that).
PYTEST_WORKERS ?= 4
PYTEST_DIST ?= loadfile
# (`make test` builds the packages before and passes PYTEST_NEEDS without them.)
PYTEST_NEEDS ?= install package $(CHROMIUM)
pytest: $(PYTEST_NEEDS)
	SKYMARSHAL_ENV=test SKYMARSHAL_PACKAGE=$(abspath $(PACKAGE)) \
		SKYMARSHAL_WORKER_PACKAGE=$(abspath $(WORKER_PACKAGE)) \
		PYTHONDONTWRITEBYTECODE= PYTHONPYCACHEPREFIX=$(abspath .local/pycache) \
		$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist $(PYTEST_DIST) --no-loadscope-reorder \
		$(PYTEST_ARGS)

# The set-up (npm's too), the static checks and the two packages side by side (three jobs at a
# time, each job's output printed whole when it ends), then the tests. Any failure fails
# `make test`. The checks write their bytecode where the tests read it (PYTHONPYCACHEPREFIX
# above): the schema check alone compiles Django, DRF, botocore and the app, which the test
# workers would otherwise compile again (measured on a fresh cache: 4 workers collecting took
# 24 s instead of 29 s after it).
test:
	PYTHONDONTWRITEBYTECODE= PYTHONPYCACHEPREFIX=$(abspath .local/pycache) \
		$(MAKE) --no-print-directory -j3 --output-sync=target install lint typecheck security schema-check package
	$(MAKE) --no-print-directory pytest PYTEST_NEEDS='install $(CHROMIUM)'

bench: install package
	SKYMARSHAL_PACKAGE=$(abspath $(PACKAGE)) $(BIN)/python -m benchmarks $(BENCH_ARGS)

# One 5-minute background run followed by polling and by repeated wait calls.
bench-long: install
	$(BIN)/python -m benchmarks.long_run $(BENCH_ARGS)

# The load test of design.md (locust, headless, bounded): `make load LOAD_ARGS="--duration 600"`.
load: install
	$(BIN)/python -m benchmarks.load $(LOAD_ARGS)

audit: $(STAMP)
	$(BIN)/python -m scripts.audit

clean:
	rm -rf $(VENV) $(LAMBDA_VENV) node_modules .local .mypy_cache .ruff_cache
