# fd2 container image. Build: `docker build -t fd2 .`  Run: `docker run -p 8080:8080 fd2`
# See docs/container.md (build, run, configuration, and the local buildah recipe).
#
# Base images are build arguments so a deployment uses the normal registries (the defaults) while
# a local or air-gapped build can point them at mirrored or locally made bases:
#   PYTHON_IMAGE  builder and runtime base: Python 3.11 on Debian bookworm, `python3` on PATH.
#                 Both stages must use the same image: the runtime copies the builder's venv,
#                 whose interpreter is a link to the base image's python3.
#   RUST_IMAGE    only its Rust toolchain is taken (/usr/local/rustup, /usr/local/cargo, the
#                 layout of the official rust image). Rust >= 1.85 (edition 2024, pyo3 0.30).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG RUST_IMAGE=rust:1.85-slim-bookworm

FROM ${RUST_IMAGE} AS rust

# ---------------------------------------------------------------------------------------------
# builder: the fd2 wheel (its Rust extension and the built-in modules of modules/), then a venv at
# /opt/fd2 holding it and the locked runtime dependencies. Nothing else of this stage is shipped.
# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

# rustc needs a C linker and libc headers/startup files; the slim Python image has neither.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*

COPY --from=rust /usr/local/rustup /usr/local/rustup
COPY --from=rust /usr/local/cargo /usr/local/cargo
ENV RUSTUP_HOME=/usr/local/rustup \
    CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:$PATH \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /src
# The locks first: these layers are reused until requirements/ changes. Every package is checked
# against the hashes in the lock (requirements/*.txt, made by `make lock`).
COPY requirements/ requirements/
# The build tools live in their own venv, apart from the venv that is shipped.
RUN python3 -m venv /opt/build \
    && /opt/build/bin/pip install --require-hashes -r requirements/build.txt \
    && rustc --version && cargo --version
RUN python3 -m venv /opt/fd2 \
    && /opt/fd2/bin/pip install --require-hashes -r requirements/runtime.txt

COPY pyproject.toml Cargo.toml Cargo.lock README.md ./
COPY rust/ rust/
# python/fd2_inference is a link into modules/: both go in, and maturin packs the modules.
COPY python/ python/
COPY modules/ modules/

# Release build of fd2._native (abi3, cp311+), exactly the crates in Cargo.lock, plus fd2's Python
# packages and built-in modules, in one wheel. It joins the venv without resolving anything more;
# pip check proves the lock holds everything fd2 declares. pip and setuptools are removed from the
# venv afterwards: nothing at run time installs packages.
RUN /opt/build/bin/maturin build --release --locked --strip --out /wheels \
    && ls -l /wheels \
    && /opt/fd2/bin/pip install --no-deps /wheels/fd2-*.whl \
    && /opt/fd2/bin/pip check \
    && /opt/fd2/bin/pip uninstall -y pip setuptools \
    && /opt/fd2/bin/fd2 --version \
    && /opt/fd2/bin/fd2 --version | grep -q "module types: inference_endpoint, inference_openai, jwt_config, langgraph_workflow, model_server, rag_service, structured_prompt" \
    && /opt/fd2/bin/fd2 serve --help > /dev/null

# ---------------------------------------------------------------------------------------------
# runtime: the slim Python base, the venv, the bundled manifests. No compiler, no source tree.
# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="fd2" \
      org.opencontainers.image.description="fd2: the front door of an enterprise AI platform (OpenAI-compatible gateway)" \
      org.opencontainers.image.licenses="Apache-2.0"

# A fixed numeric uid/gid so `runAsNonRoot` checks and volume permissions are predictable.
RUN groupadd --gid 10001 fd2 \
    && useradd --uid 10001 --gid fd2 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin fd2

COPY --from=builder /opt/fd2 /opt/fd2
# The demo project (its upstream from FD2_DEMO_UPSTREAM, its key from FD2_DEMO_API_KEY). Owned by
# root and read-only for fd2: mount your own directory over it, or set FD2_MANIFESTS or
# FD2_CONTROL_TOWER.
COPY examples/manifests/demo.json /etc/fd2/manifests/demo.json

ENV PATH=/opt/fd2/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    FD2_HOST=0.0.0.0 \
    FD2_PORT=8080 \
    FD2_MANIFESTS=/etc/fd2/manifests \
    FD2_MANIFEST_ENV_ALLOW=FD2_DEMO_UPSTREAM

USER 10001:10001
WORKDIR /
EXPOSE 8080

# Python's urllib (no curl in the image), isolated mode (-I: nothing imported from the working
# directory), proxies ignored; any answer but 200 (503 while draining) or no answer fails.
# Probes FD2_PORT on loopback: change the port with FD2_PORT rather than a --port argument.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-I", "-c", "import os, sys, urllib.request as u; r = u.build_opener(u.ProxyHandler({})).open('http://127.0.0.1:%s/healthz' % os.environ.get('FD2_PORT', '8080'), timeout=4); sys.exit(0 if r.status == 200 else 1)"]

# Exec form: fd2 (Granian) is PID 1 and receives SIGTERM itself, drains in-flight requests for
# up to FD2_SHUTDOWN_TIMEOUT seconds, then exits. Extra `fd2 serve` flags go after the image name.
STOPSIGNAL SIGTERM
ENTRYPOINT ["fd2", "serve"]
CMD []
