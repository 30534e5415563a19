"""Real processes on loopback: the OpenAI upstream stand-in and fd2 itself.

Session-scoped where a test only sends requests; function-scoped (`private_fd2`) where a test
rewrites manifests or stops the server.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import openai
import pytest

from .leaks import LEAKS
from .support import REPO

STANDIN_SCRIPT = REPO / "tests" / "standins" / "openai_upstream.py"
EXAMPLE_MANIFESTS = REPO / "examples" / "manifests"
# The reference manifests the tests are written against (other examples may need other settings).
REFERENCE_MANIFESTS = ("acme.json", "billing-assistant.module.json")
EXAMPLE_UPSTREAM = "127.0.0.1:9100"
STARTUP_DEADLINE_S = 30.0
STOP_GRACE_S = 10.0
FD2_ENV = {
    "ACME_DEV_JWT_SECRET": "acme-dev-jwt-secret-for-tests-only-0123456789",
    "ACME_UPSTREAM_API_KEY": "test-acme-key",
    "BILLING_UPSTREAM_API_KEY": "test-billing-key",
}


for _value in FD2_ENV.values():
    LEAKS.add_secret(_value)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Service:
    """A server process we started, in its own process group, with its output in files."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    stdout_path: Path
    stderr_path: Path
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def output(self, tail: int = 20000) -> str:
        parts = []
        for label, path in (("stderr", self.stderr_path), ("stdout", self.stdout_path)):
            text = path.read_text(errors="replace") if path.exists() else ""
            parts.append(f"--- {self.name} {label} ---\n{text[-tail:]}")
        return "\n".join(parts)

    def signal(self, signum: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signum)

    def wait_exit(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace: float = STOP_GRACE_S) -> None:
        """SIGTERM, then SIGKILL to the whole group after `grace` seconds."""
        self.signal(signal.SIGTERM)
        if self.wait_exit(grace) is None:
            self._kill_group()
            self.proc.wait(5)
        # Workers outliving their parent would hold the port; the group is ours alone.
        self._kill_group()
        LEAKS.forget(self.name, self.port)

    def _kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)


def start_service(
    name: str,
    argv: list[str],
    *,
    port: int,
    ready_path: str,
    log_dir: Path,
    env: dict[str, str] | None = None,
    deadline_s: float = STARTUP_DEADLINE_S,
) -> Service:
    """Starts `argv` and waits until GET `ready_path` answers 200; fails showing its output."""
    stdout_path = log_dir / f"{name}.stdout.log"
    stderr_path = log_dir / f"{name}.stderr.log"
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=err, env=env, cwd=REPO, start_new_session=True
        )
    service = Service(name, proc, port, stdout_path, stderr_path)
    LEAKS.add_service(name, port, [stdout_path, stderr_path])
    deadline = time.monotonic() + deadline_s
    last_error = "no answer yet"
    with httpx.Client(timeout=1.0) as client:
        while True:
            code = proc.poll()
            if code is not None:
                service.stop()
                pytest.fail(
                    f"{name} exited with code {code} before it was ready "
                    f"(command: {' '.join(argv)})\n{service.output()}",
                    pytrace=False,
                )
            try:
                response = client.get(service.url + ready_path)
                if response.status_code == 200:
                    return service
                last_error = f"GET {ready_path} -> {response.status_code}: {response.text[:300]}"
            except httpx.HTTPError as exc:
                last_error = repr(exc)
            if time.monotonic() > deadline:
                service.stop()
                pytest.fail(
                    f"{name} not ready after {deadline_s}s ({last_error}; "
                    f"command: {' '.join(argv)})\n{service.output()}",
                    pytrace=False,
                )
            time.sleep(0.05)


def fd2_argv(*args: str) -> list[str]:
    script = Path(sys.executable).parent / "fd2"
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-m", "fd2", *args]


def fd2_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("FD2_")}
    env.update(FD2_ENV)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def quick_manifest(upstream: str) -> dict[str, Any]:
    """A single-module manifest whose upstream time limits are shorter than `slow-3000`."""
    return {
        "auth": {"mode": "none"},
        "project": "quick",
        "module": "chat",
        "module_type": "inference_openai",
        "version": "1.0.0",
        "runtime": {
            "type": "python:3.11",
            "implementation": "fd2_inference.InferenceModule",
        },
        "endpoints": {"dev": {"primary": f"http://{upstream}/v1"}},
        "configuration_references": [
            {"name": "api_key", "source": "env:BILLING_UPSTREAM_API_KEY", "required": True}
        ],
        "api_schema": {
            "openapi_ref": "openai:v1",
            "endpoints": ["/v1/chat/completions", "/v1/embeddings", "/v1/models"],
        },
        "timeouts": {"connect_s": 1, "read_s": 0.5, "total_s": 1},
        "default_environment": "dev",
    }


def opened(raw: dict[str, Any]) -> dict[str, Any]:
    """`raw` (either manifest format) with every module that names no auth opened explicitly,
    as an operator must write it: fd2 serves nothing open by omission (docs/security.md)."""
    if "module_type" in raw and "project_id" not in raw:
        raw.setdefault("auth", {"mode": "none"})
        return raw
    overlay = raw.get("metadata", {}).get("fd2", {}).get("modules", {})
    for module in raw.get("modules", []):
        if module["module_type"] != "jwt_config" and "auth" not in overlay.get(module["name"], {}):
            module.setdefault("auth", {"mode": "none"})
    return raw


def without_auth_and_limits(text: str) -> str:
    """The acme example with its auth and rate limits off: the foundation's tests exercise
    routing, streaming and errors with any client; auth and limits have their own tests
    (test_auth_*.py, test_limits_*.py) on manifests of their own."""
    raw = json.loads(text)
    for entry in raw.get("environments", {}).values():
        entry.pop("limits", None)
    for module in raw.get("modules", []):
        if module["module_type"] != "jwt_config":
            module["auth"] = {"mode": "none"}
    return json.dumps(raw, indent=2)


def build_manifest_dir(directory: Path, upstream: str) -> Path:
    """The example manifests pointed at the stand-in (dev only), plus the quick-timeout module."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in REFERENCE_MANIFESTS:
        text = (EXAMPLE_MANIFESTS / name).read_text().replace(EXAMPLE_UPSTREAM, upstream)
        if name == "acme.json":
            text = without_auth_and_limits(text)
        else:
            text = json.dumps(opened(json.loads(text)), indent=2)
        (directory / name).write_text(text)
    (directory / "quick-chat.module.json").write_text(
        json.dumps(quick_manifest(upstream), indent=2)
    )
    return directory


def start_fd2(manifests: Path, log_dir: Path, name: str = "fd2") -> Service:
    port = free_port()
    argv = fd2_argv(
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--manifests",
        str(manifests),
        "--default-env",
        "development",
        "--workers",
        "1",
    )
    return start_service(
        name, argv, port=port, ready_path="/healthz", log_dir=log_dir, env=fd2_env()
    )


class StandinStats:
    """Reads and resets the stand-in's counters."""

    def __init__(self, url: str) -> None:
        self._client = httpx.Client(base_url=url, timeout=5.0)

    def get(self) -> dict[str, int]:
        response = self._client.get("/_standin/stats")
        response.raise_for_status()
        return dict(response.json())

    def reset(self) -> None:
        self._client.post("/_standin/reset").raise_for_status()

    def settle(self, timeout: float = 15.0) -> None:
        """Waits for streams left over by earlier tests to end, then zeroes the counters."""
        deadline = time.monotonic() + timeout
        while self.get()["open_streams"] and time.monotonic() < deadline:
            time.sleep(0.05)
        self.reset()

    def close(self) -> None:
        self._client.close()


@pytest.fixture(scope="session")
def logs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


def start_standin(name: str, log_dir: Path) -> Service:
    """An OpenAI stand-in process on a free loopback port."""
    port = free_port()
    argv = [sys.executable, str(STANDIN_SCRIPT), "--host", "127.0.0.1", "--port", str(port)]
    return start_service(
        name, argv, port=port, ready_path="/_standin/stats", log_dir=log_dir, deadline_s=15
    )


@pytest.fixture(scope="session")
def standin(logs_dir: Path) -> Iterator[Service]:
    service = start_standin("standin", logs_dir)
    yield service
    service.stop()


@pytest.fixture
def standin_stats(standin: Service) -> Iterator[StandinStats]:
    stats = StandinStats(standin.url)
    yield stats
    stats.close()


@pytest.fixture(scope="session")
def session_manifests(tmp_path_factory: pytest.TempPathFactory, standin: Service) -> Path:
    return build_manifest_dir(tmp_path_factory.mktemp("manifests"), standin.address)


@pytest.fixture(scope="session")
def fd2(session_manifests: Path, logs_dir: Path) -> Iterator[Service]:
    service = start_fd2(session_manifests, logs_dir)
    yield service
    service.stop()


@dataclass
class PrivateFd2:
    service: Service
    manifests: Path


@pytest.fixture
def private_fd2(tmp_path: Path, standin: Service) -> Iterator[PrivateFd2]:
    """An fd2 of this test's own, on its own copy of the manifests (free to rewrite or stop)."""
    manifests = build_manifest_dir(tmp_path / "manifests", standin.address)
    logs = tmp_path / "logs"
    logs.mkdir()
    service = start_fd2(manifests, logs, name="fd2-private")
    yield PrivateFd2(service, manifests)
    service.stop()


@pytest.fixture
def make_client(fd2: Service) -> Iterator[Callable[..., openai.OpenAI]]:
    """Builds SDK clients for a `project/module` on the session fd2; closes them afterwards."""
    clients: list[openai.OpenAI] = []

    def make(
        project_module: str = "acme/chat", *, server: Service | None = None, **kwargs: Any
    ) -> openai.OpenAI:
        target = server or fd2
        base_url = f"{target.url}/{project_module}/v1" if project_module else f"{target.url}/v1"
        kwargs.setdefault("timeout", 30.0)
        client = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client: Callable[..., openai.OpenAI]) -> openai.OpenAI:
    """The SDK pointed at acme/chat."""
    return make_client("acme/chat")


@pytest.fixture
def http(fd2: Service) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fd2.url, timeout=30.0) as client:
        yield client


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failed test's report ends with the tail of what the servers it used have logged."""
    report = yield
    if report.failed:
        for value in getattr(item, "funcargs", {}).values():
            service = value.service if isinstance(value, PrivateFd2) else value
            if isinstance(service, Service):
                report.sections.append((f"{service.name} output (tail)", service.output(4000)))
    return report


# --- The suite-wide leak check (see leaks.py): record every answer, then grep it all at the end.


def _recording_streams(package: ModuleType) -> tuple[type, type]:
    """Body streams of `package` (httpx or its fork) that record each piece before handing it on;
    subclasses of its own stream types, which its Response checks for."""

    class Recording(package.SyncByteStream):  # type: ignore[misc,name-defined]
        def __init__(self, inner: Any, port: int | None, what: str) -> None:
            self._inner, self._port, self._what = inner, port, what

        def __iter__(self) -> Iterator[bytes]:
            for chunk in self._inner:
                LEAKS.record(self._port, self._what, chunk)
                yield chunk

        def close(self) -> None:
            self._inner.close()

    class AsyncRecording(package.AsyncByteStream):  # type: ignore[misc,name-defined]
        def __init__(self, inner: Any, port: int | None, what: str) -> None:
            self._inner, self._port, self._what = inner, port, what

        async def __aiter__(self) -> AsyncIterator[bytes]:
            async for chunk in self._inner:
                LEAKS.record(self._port, self._what, chunk)
                yield chunk

        async def aclose(self) -> None:
            await self._inner.aclose()

    return Recording, AsyncRecording


def _http_client_packages() -> list[ModuleType]:
    """httpx, and httpx2 where installed: the OpenAI SDK (3.x) carries its own fork of httpx."""
    packages: list[ModuleType] = [httpx]
    with contextlib.suppress(ImportError):
        packages.append(importlib.import_module("httpx2"))
    return packages


def _record(request: Any, response: Any, stream_type: type) -> None:
    what = f"{request.method} {request.url.path}"
    head = b"".join(b"%s: %s\n" % pair for pair in response.headers.raw)
    LEAKS.record(request.url.port, what, head)
    response.stream = stream_type(response.stream, request.url.port, what)


@pytest.fixture(scope="session", autouse=True)
def record_answers() -> Iterator[None]:
    """Every answer an httpx client receives (the OpenAI and Anthropic SDKs' included, sync and
    async) goes to the leak check."""
    restore: list[tuple[type, str, Any]] = []
    for package in _http_client_packages():
        sync_stream, async_stream = _recording_streams(package)
        sync_original = package.HTTPTransport.handle_request
        async_original = package.AsyncHTTPTransport.handle_async_request

        def recording(
            self: Any, request: Any, _original: Any = sync_original, _stream: type = sync_stream
        ) -> Any:
            response = _original(self, request)
            _record(request, response, _stream)
            return response

        async def recording_async(
            self: Any, request: Any, _original: Any = async_original, _stream: type = async_stream
        ) -> Any:
            response = await _original(self, request)
            _record(request, response, _stream)
            return response

        restore += [
            (package.HTTPTransport, "handle_request", sync_original),
            (package.AsyncHTTPTransport, "handle_async_request", async_original),
        ]
        package.HTTPTransport.handle_request = recording
        package.AsyncHTTPTransport.handle_async_request = recording_async
    yield
    for owner, name, original in restore:
        setattr(owner, name, original)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    findings = LEAKS.findings()
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"leak check: {LEAKS.summary()}")
    if findings:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if reporter is not None:
            reporter.write_sep("=", "test secrets leaked", red=True)
            for finding in findings[:50]:
                reporter.write_line(finding)


from .vault_support import vault, vault_standin  # noqa: E402, F401  # fixtures of the Vault tests
