# Remediator — `make up` runs the stack, `make test` runs everything that proves it.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV   ?= .venv
PY     := $(VENV)/bin/python
STATE  ?= .state
PYTHON ?= python3
export BASE_IMAGE ?=

.PHONY: help host venv docker images models up down clean demo test lint typecheck \
        unit integration e2e bench bench-model bench-ingest bench-scenarios \
        bench-reliability bench-redact bench-failover demo-all

help:
	@echo "make up      run the stack (app-prod in Docker; Prometheus, Alertmanager, Remediator)"
	@echo "make test    lint, type checks, unit, integration (real Docker) and e2e tests"
	@echo "make down | clean | demo | demo-all | images | models | bench"

host:                      ## install missing host tools (docker.io, prometheus, ...) as root
	@bash scripts/host_setup.sh

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { echo "make: cannot create $(VENV): install python3-venv (make host)"; exit 1; }
	@echo "[venv] installing the project and its dev tools into $(VENV)"
	@$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

docker: host               ## make sure a Docker engine answers (starts dockerd as root)
	@mkdir -p $(STATE)
	@bash scripts/dockerd.sh start $(STATE)/dockerd.pid >/dev/null

images: host venv docker   ## mobile-multimodal:{version,latest} and remediator:{version,latest}
	@$(PY) scripts/build_images.py

models: venv               ## retrain the three variants and rewrite models/manifest.json
	@$(VENV)/bin/modelserver train --out models

up: host venv docker images
	@$(PY) scripts/stack.py up --state $(STATE)

down:
	@if [ -x $(PY) ]; then $(PY) scripts/stack.py down --state $(STATE); fi
	@bash scripts/dockerd.sh stop $(STATE)/dockerd.pid

clean:
	@if [ -x $(PY) ]; then $(PY) scripts/stack.py clean --state $(STATE); fi
	@bash scripts/dockerd.sh stop $(STATE)/dockerd.pid
	rm -rf $(STATE) build

demo: venv
	@$(PY) scripts/stack.py demo --state $(STATE) $(if $(SCENARIO),--scenario $(SCENARIO))

demo-all: venv             ## every README scenario in turn; a table; fails if one is not repaired
	@$(PY) scripts/stack.py demo-all --state $(STATE)

lint: venv
	@echo "[lint] ruff check"
	@$(VENV)/bin/ruff check .

typecheck: venv
	@echo "[typecheck] mypy"
	@$(VENV)/bin/mypy

unit: venv
	@$(PY) -m pytest tests/unit

integration: host venv
	@$(PY) -m pytest tests/integration

e2e: host venv
	@$(PY) -m pytest tests/e2e

test: host venv lint typecheck
	@$(PY) -m pytest tests

bench: bench-model bench-ingest bench-scenarios bench-reliability bench-redact bench-failover

bench-model: venv
	@$(PY) bench/bench_model.py

bench-ingest: host venv
	@$(PY) bench/bench_ingest.py

bench-scenarios: host venv images
	@$(PY) bench/bench_scenarios.py

bench-reliability: host venv images
	@$(PY) bench/bench_reliability.py

bench-redact: venv
	@$(PY) bench/bench_redact.py

bench-failover: host venv  ## replicas on a private PostgreSQL; SIGKILL the one running an execution
	@$(PY) bench/bench_failover.py
