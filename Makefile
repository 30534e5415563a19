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

.PHONY: help install lock redis-server haproxy demo run test test-python test-rust lint format clean \
	bench bench-quick bench-peers bench-smoke bench-tools bench-micro bench-instructions bench-first-token bench-locust bench-profile bench-prompts \
	deploy-check soak

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "fd2 needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# The dependency versions come from the lock (requirements/dev.txt, made by `make lock`).
$(STAMP): $(BIN)/python pyproject.toml requirements/dev.txt Cargo.toml rust/Cargo.toml rust/build.rs $(shell find rust/src -name '*.rs')
	@command -v cargo >/dev/null || { echo "fd2 needs a Rust toolchain (cargo) to build fd2._native"; exit 1; }
	@# The built-in modules were once a distribution of their own; they are part of fd2 now.
	@$(BIN)/pip uninstall -q -y fd2-modules 2>/dev/null || true
	$(BIN)/pip install -q -c requirements/dev.txt -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install fd2 (building fd2._native, with its built-in modules) and dev tools

# uv resolves (fast, and its --universal lock holds for every platform the image is built for);
# pip installs from the result. runtime.txt and build.txt carry hashes (the image installs them
# with --require-hashes); dev.txt pins the dev tools within the runtime pins.
UV := $(BIN)/uv
LOCK_ARGS := $(if $(UPGRADE),--upgrade) --universal --python-version 3.11 --custom-compile-command "make lock" -q
lock: $(BIN)/python ## re-resolve requirements/*.txt from pyproject.toml (UPGRADE=1: newest allowed versions)
	@test -x $(UV) || $(BIN)/pip install -q uv
	$(UV) pip compile pyproject.toml $(LOCK_ARGS) --generate-hashes -o requirements/runtime.txt
	$(UV) pip compile requirements/build.in $(LOCK_ARGS) --generate-hashes -o requirements/build.txt
	$(UV) pip compile pyproject.toml --extra dev -c requirements/runtime.txt $(LOCK_ARGS) -o requirements/dev.txt

# The demo project (examples/demo) in front of a local OpenAI-style stand-in that echoes requests;
# FD2_DEMO_UPSTREAM (+ FD2_DEMO_API_KEY or OPENAI_API_KEY) puts a real provider behind it instead,
# FD2_DEMO_PORT moves fd2 off 8080 (a port in use is an error).
demo: install ## start fd2 on the demo project in front of a local stand-in, and show requests
	$(BIN)/python scripts/demo.py

run: install ## serve the demo project on 127.0.0.1:8080 in front of the stand-in (no requests shown)
	$(BIN)/python scripts/demo.py --serve

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

# deploy-check validates deploy/compose/haproxy.cfg with it; tests/e2e/test_scaleout.py runs it.
haproxy: ## install haproxy when it is missing (apt)
	@command -v haproxy >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq haproxy >/dev/null; }

test-python: install redis-server haproxy ## the pytest suite (unit, module, end-to-end)
	$(BIN)/pytest

# The benchmark's stand-in and load generator are Go programs (standard library only; Go >= 1.19).
GO_BIN := $(shell command -v go 2>/dev/null || ls /usr/local/go/bin/go 2>/dev/null)

NGINX_BIN := $(shell command -v nginx 2>/dev/null || ls /usr/sbin/nginx 2>/dev/null)

bench-tools: ## install Go (the harness builds its tools with it) and nginx (an anchor) when absent
	@if [ -z "$(GO_BIN)" ]; then \
		echo "installing Go to build the benchmark tools"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq golang-go; \
	fi
	@if [ -z "$(NGINX_BIN)" ]; then \
		echo "installing nginx-light (the C proxy every benchmark report is read against)"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends nginx-light; \
	fi

bench: install bench-tools ## overhead, streaming and load: direct vs fd2, 3 interleaved rounds (minutes); routing and prompt figures
	$(BIN)/python bench/run.py
	$(BIN)/python bench/routing.py
	$(BIN)/python bench/prompt_render.py

bench-quick: install bench-tools ## the same, 2 shorter rounds
	$(BIN)/python bench/run.py --quick

bench-peers: install bench-tools ## the full run with LiteLLM and Portkey too (installs them in bench/.peers)
	bench/peers/install.sh
	$(BIN)/python bench/run.py --peers

bench-locust: install bench-tools ## a locust profile headless against a local fd2: make bench-locust PROFILE=chat
	$(BIN)/python bench/locust/run.py $(or $(PROFILE),chat)

bench-profile: install bench-tools ## py-spy profile of fd2 under load (pip install py-spy first)
	$(BIN)/python bench/profile.py

bench-instructions: install bench-tools ## instructions per request under callgrind (repeatable on a busy machine; ~8 min)
	@command -v valgrind >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq valgrind; }
	$(BIN)/python bench/instructions.py

bench-first-token: install bench-tools ## a stream's first token traced with perf: who runs on the server core in each leg (root; ~1 min)
	@command -v perf >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq linux-perf; }
	$(BIN)/python bench/first_token.py

bench-micro: install ## micro-benchmarks of the hot functions against pure Python (pytest-benchmark)
	$(BIN)/pytest bench/micro -p no:cacheprovider

bench-smoke: install bench-tools ## a short run of every benchmark (30-40 s), so the harness never rots (no speed asserts)
	cd bench && GO=$$(command -v go || echo /usr/local/go/bin/go) && $$GO vet ./... \
		&& test -z "$$($$(dirname $$GO)/gofmt -l .)"
	$(BIN)/python bench/run.py --smoke
	$(BIN)/python bench/prompt_render.py --smoke
	$(BIN)/python bench/locust/run.py --smoke
	$(BIN)/pytest bench/micro -q -p no:cacheprovider --benchmark-disable
	$(BIN)/python bench/route_rebuild.py --quick
	$(BIN)/python bench/auth_cost.py --quick
	$(BIN)/python bench/routing.py --quick

bench-prompts: install bench-tools ## a stored prompt run through /v1/responses against the same request inline (~1 min)
	$(BIN)/python bench/prompt_render.py

bench-routing: install ## routing figures: failover on a kill, hedging a slow tail, least in flight, the retry budget (~1 min)
	$(BIN)/python bench/routing.py

# Not part of `make test`: minutes long, and it kills processes of its own on purpose.
soak: install redis-server ## 3 min of mixed hostile load on loopback (floods, slow bodies, resets, worker kills, Redis stops); fails on a lost or hung request
	$(BIN)/python bench/soak.py --seconds $(or $(SOAK_SECONDS),180)


# deploy/ checked without a Docker engine or a cluster: HAProxy's own config check (Debian's
# haproxy), and deploy/check, a Go program (Go >= 1.25: the machine's /usr/local/go) that loads the
# compose file with compose-go (what Docker Compose loads it with) and decodes the Kubernetes
# manifests strictly into the Kubernetes API's Go types, then checks fd2's operational rules.
deploy-check: bench-tools haproxy ## validate deploy/ (compose file, HAProxy config, Kubernetes manifests)
	haproxy -c -q -f deploy/compose/haproxy.cfg
	cd deploy/check && GO=$$(command -v go || echo /usr/local/go/bin/go) \
		&& export GOTOOLCHAIN=local GOFLAGS=-mod=readonly \
		&& test -z "$$($$(dirname $$GO)/gofmt -l .)" && $$GO vet . && $$GO run . ..

test: install lint deploy-check test-rust test-python bench-smoke ## everything CI runs

format: install ## apply ruff and cargo formatting
	$(BIN)/ruff format python modules tests scripts bench
	$(BIN)/ruff check --fix python modules tests scripts bench
	cargo fmt --all

clean: ## remove build output and the venv
	rm -rf $(VENV) target .pytest_cache .mypy_cache .ruff_cache
