# crisk — two commands do everything on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
PACKAGES := data_contracts features training serving world pipelines
# Test processes of `make test` (pytest-xdist; a module's tests stay in one process, so its
# module-scoped servers and clusters start once). TEST_WORKERS=0 runs everything in one.
TEST_WORKERS ?= 2

export CRISK_HOME ?= $(CURDIR)/.crisk
# Nothing leaves the machine.
export DO_NOT_TRACK := true
export MLFLOW_DISABLE_TELEMETRY := true
export BENTOML_DO_NOT_TRACK := true
export FEAST_USAGE := False
export GX_ANALYTICS_ENABLED := false
export BENTOML_HOME := $(CRISK_HOME)/bentoml
export MPLCONFIGDIR := $(CRISK_HOME)/cache/matplotlib
export MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR := false
# Some machines set this; without bytecode caches every process recompiles feast, GX and mlflow.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: run test venv bootstrap serve lint typecheck unit integration model lock benchmarks clean audit

$(BIN)/.installed: requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11 or set PYTHON=..."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(BIN)/uv pip install --python $(BIN)/python --quiet -r requirements.lock
	$(BIN)/uv pip install --python $(BIN)/python --quiet --no-deps -e .
	@touch $@

venv: $(BIN)/.installed

bootstrap: venv
	$(BIN)/crisk bootstrap

serve: venv
	$(BIN)/crisk serve

## run: install the locked dependencies, bootstrap on the synthetic world if nothing is trained, serve on 127.0.0.1:3000
run: bootstrap serve

lint: venv
	$(BIN)/ruff check $(PACKAGES) tests benchmarks examples scripts
	$(BIN)/ruff format --check $(PACKAGES) tests benchmarks examples scripts

typecheck: venv
	$(BIN)/mypy $(PACKAGES) benchmarks

unit: venv
	$(BIN)/pytest tests/unit -q

integration: venv
	$(BIN)/pytest tests/integration -q

model: venv
	$(BIN)/pytest tests/model -q

## test: lint, type-check and the whole test suite
test: lint typecheck
	$(BIN)/pytest -q --durations=25 -n $(TEST_WORKERS) --dist loadfile

## lock: re-resolve requirements.in into requirements.lock (needs the package index)
lock: venv
	$(BIN)/uv pip compile requirements.in --python-version 3.11 -o requirements.lock

## audit: known vulnerabilities of the locked dependencies (pip-audit); offline it says so and passes
audit: venv
	@log=$$(mktemp); status=0; \
	$(BIN)/pip-audit -r requirements.lock --no-deps --disable-pip --progress-spinner off \
	  >"$$log" 2>&1 || status=$$?; \
	if [ $$status -ne 0 ] && ! grep -q "known vulnerabilit" "$$log"; then \
	  tail -n 1 "$$log"; \
	  echo "make audit: the vulnerability service could not be reached (offline?): nothing was checked"; \
	  status=0; else cat "$$log"; fi; rm -f "$$log"; exit $$status

benchmarks: venv
	$(BIN)/python benchmarks/world_generation.py

clean:
	rm -rf .crisk .pytest_cache .mypy_cache .ruff_cache
