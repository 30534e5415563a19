# fd2 — one entry point for every habit. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# pip trusts its own CA bundle; where the system store exists (and holds, e.g., a site's
# TLS-inspecting proxy CA), let pip use it unless the caller chose otherwise.
SYSTEM_CA := /etc/ssl/certs/ca-certificates.crt
ifeq ($(origin PIP_CERT), undefined)
ifneq ($(wildcard $(SYSTEM_CA)),)
export PIP_CERT := $(SYSTEM_CA)
endif
endif

.PHONY: help install redis-server demo run test test-python test-rust bench-smoke lint format clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "fd2 needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml Cargo.toml rust/Cargo.toml modules/pyproject.toml $(shell find rust/src -name '*.rs')
	@command -v cargo >/dev/null || { echo "fd2 needs a Rust toolchain (cargo) to build fd2._native"; exit 1; }
	$(BIN)/pip install -q -e '.[dev]' -e ./modules
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install fd2 (building fd2._native), its modules and dev tools

demo: install ## start fd2 on the bundled manifests in front of a local stand-in, and show requests
	$(BIN)/python scripts/demo.py

run: install ## serve the bundled manifests on 127.0.0.1:8080 (upstreams as the manifests say)
	ACME_UPSTREAM_API_KEY=$${ACME_UPSTREAM_API_KEY:-demo} \
	ACME_DEV_JWT_SECRET=$${ACME_DEV_JWT_SECRET:-demo-only-jwt-secret-change-me-0123456789} \
	BILLING_UPSTREAM_API_KEY=$${BILLING_UPSTREAM_API_KEY:-demo} \
	FD2_DEMO_UPSTREAM=$${FD2_DEMO_UPSTREAM:-http://127.0.0.1:9100/v1} \
	FD2_DEMO_API_KEY=$${FD2_DEMO_API_KEY:-demo} \
	$(BIN)/fd2 serve --manifests examples/manifests

lint: install ## ruff, mypy (strict), cargo fmt, clippy (pedantic), stubtest
	$(BIN)/ruff check python modules tests scripts bench
	$(BIN)/ruff format --check python modules tests scripts bench
	$(BIN)/mypy
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings
	$(BIN)/python -m mypy.stubtest fd2._native

test-rust: ## cargo test for the native crate
	cargo test --quiet

# Tests (manifest sharing, rate limits, API keys) and bench/auth_cost.py start redis-servers of their own.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
redis-server: ## install redis-server when it is missing (apt)
	@command -v redis-server >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq redis-server; }

test-python: install redis-server ## the pytest suite (unit, module, end-to-end)
	$(BIN)/pytest

bench-smoke: install ## a few seconds of every benchmark, so the harness never rots (no speed asserts)
	$(BIN)/pytest bench/micro -q --benchmark-disable
	$(BIN)/python bench/route_rebuild.py --quick

test: install lint test-rust test-python bench-smoke ## everything CI runs

format: install ## apply ruff and cargo formatting
	$(BIN)/ruff format python modules tests scripts bench
	$(BIN)/ruff check --fix python modules tests scripts bench
	cargo fmt --all

clean: ## remove build output and the venv
	rm -rf $(VENV) target .pytest_cache .mypy_cache .ruff_cache
