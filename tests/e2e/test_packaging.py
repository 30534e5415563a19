"""`pip install <checkout>` into a fresh venv is a whole gateway: every built-in module type serves.

What a container build, a wheel user or a platform team does: the runtime dependencies from the
lock (hash-checked, as the Dockerfile installs them), then the checkout itself (pip builds the
wheel through maturin, reusing the checkout's Cargo build), then the installed `fd2 serve` on the
reference manifests in front of the stand-in. About half a minute, most of it pip.
"""

from __future__ import annotations

import os
import subprocess
import venv
from pathlib import Path

import httpx
import pytest

from .conftest import REPO, Service, build_manifest_dir, free_port, start_service

pytestmark = pytest.mark.timeout(600)
PIP_STEP_TIMEOUT_S = 400
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def _run(argv: list[str], *, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=PIP_STEP_TIMEOUT_S
    )
    assert done.returncode == 0, f"{' '.join(argv)}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the locked runtime dependencies and fd2 installed from the checkout."""
    root = tmp_path_factory.mktemp("packaging")
    venv.EnvBuilder(with_pip=True).create(root / "venv")
    bin_dir = root / "venv" / "bin"
    # Nothing of the dev venv or the source tree may leak into the fresh one.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    pip = [str(bin_dir / "python"), "-m", "pip", "install", "-q"]
    _run(
        [*pip, "--require-hashes", "-r", str(REPO / "requirements/runtime.txt")], cwd=root, env=env
    )
    _run([*pip, "--no-deps", str(REPO)], cwd=root, env=env)
    # The lock satisfies everything fd2 declares (pip check fails on a missing or wrong pin).
    _run([str(bin_dir / "python"), "-m", "pip", "check"], cwd=root, env=env)
    return bin_dir


def test_installed_package_carries_the_built_in_modules(installed: Path) -> None:
    where = _run(
        [
            str(installed / "python"),
            "-I",
            "-c",
            "import fd2_inference, fd2_model_server, fd2_rag, fd2_workflows, fd2_prompts;"
            " print(fd2_inference.__file__); print(fd2_rag.__file__);"
            " print(fd2_model_server.__file__); print(fd2_workflows.__file__);"
            " print(fd2_prompts.__file__)",
        ],
        cwd=installed,
        env={"PATH": os.environ["PATH"]},
    )
    for line in where.split():
        assert Path(line).is_relative_to(installed.parent / "lib"), where
    version = _run([str(installed / "fd2"), "--version"], cwd=installed, env=dict(os.environ))
    lines = version.splitlines()
    assert lines[0].startswith("fd2 0.") and lines[1].startswith("fd2._native 0.")
    assert "rustc " in lines[1] and "release" in lines[1]
    types = set(lines[3].removeprefix("module types: ").split(", "))
    assert {
        "inference_endpoint",
        "inference_openai",
        "jwt_config",
        "rag_service",
        "model_server",
        "langgraph_workflow",
        "structured_prompt",
    } <= types


def test_installed_fd2_serves_the_example_manifests(
    installed: Path, standin: Service, tmp_path: Path
) -> None:
    manifests = build_manifest_dir(tmp_path / "manifests", standin.address)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FD2_") and k != "PYTHONPATH"}
    env.update(
        ACME_DEV_JWT_SECRET="acme-dev-jwt-secret-for-tests-only-0123456789",
        ACME_UPSTREAM_API_KEY="test-acme-key",
        BILLING_UPSTREAM_API_KEY="test-billing-key",
    )
    argv = [str(installed / "fd2"), "serve", "--port", str(port), "--manifests", str(manifests)]
    server = start_service(
        "fd2-installed", argv, port=port, ready_path="/healthz", log_dir=tmp_path, env=env
    )
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            # acme/chat is an `inference_endpoint`; billing/assistant an `inference_openai`.
            for path in (
                "/acme/chat/v1/chat/completions",
                "/billing/assistant/v1/chat/completions",
            ):
                answer = client.post(path, json=CHAT)
                assert answer.status_code == 200, (path, answer.text)
                assert answer.json()["object"] == "chat.completion"
    finally:
        server.stop()
    # acme's `monitoring` module is served by nothing (a warning); every built-in type is.
    log = server.stderr_path.read_text()
    assert "type monitoring is served by no installed package" in log, log
    assert "type inference_" not in log and "type jwt_config" not in log, log
