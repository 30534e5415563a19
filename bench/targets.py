"""What the load is sent to: the stand-in directly, fd2 in front of it, and (with --peers) peers.

Each target serves two upstreams: `chat` (whole answers, zero or fixed delay) and `stream`
(streamed answers on the streaming schedule). A target knows its URLs, extra headers and the
process whose CPU and memory are measured.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from procs import BIN, Pinning, Processes, free_port, wait_http

BENCH_KEY = "fd2_bench-key-000000000000000000000000000"
BENCH_PEPPER = "bench-pepper"


def keyed(fd2: Target) -> Target:
    """The same fd2 on its route with an API key and the in-process limiter (chat only)."""
    return Target(
        name=f"{fd2.name}-key",
        chat_url=fd2.chat_url.replace("/bench/chat/", "/bench/chat_key/"),
        stream_url="",
        process=fd2.process,
        chat_headers=[f"Authorization: Bearer {BENCH_KEY}"],
        workers=fd2.workers,
    )


def chat_body(model: str) -> str:
    return f'{{"model":"{model}","messages":[{{"role":"user","content":"Say hello."}}]}}'


def stream_body(model: str, shape: StreamShape | None = None) -> str:
    """With `shape`, the request asks the stand-in for that stream shape instead of its flags'
    (in OpenAI's `metadata`, which fd2 and the anchors relay unchanged)."""
    asked = f',"metadata":{{"standin_shape":"{shape.spec()}"}}' if shape is not None else ""
    return (
        f'{{"model":"{model}","stream":true{asked},'
        '"messages":[{"role":"user","content":"Count."}]}'
    )


@dataclass
class StreamShape:
    ttft_ms: float
    chunks: int
    gap_ms: float

    def spec(self) -> str:
        """As the stand-in's `metadata.standin_shape` and `--stream-shape` read it."""
        return f"{self.ttft_ms:g},{self.chunks},{self.gap_ms:g}"

    def length_s(self) -> float:
        """How long one stand-in stream lasts (first chunk, then the gaps)."""
        return (self.ttft_ms + self.chunks * self.gap_ms) / 1000

    def chunks_per_s(self, streams: int) -> float:
        """Content chunks a second with `streams` open at once: what the tools' core serves."""
        return streams * self.chunks / self.length_s()


@dataclass
class Target:
    name: str
    chat_url: str
    stream_url: str
    process: subprocess.Popen[bytes]
    chat_headers: list[str] = field(default_factory=list)
    stream_headers: list[str] = field(default_factory=list)
    embeddings_url: str | None = None
    models_url: str | None = None
    chat_model: str = "gpt-4o-mini"
    stream_model: str = "gpt-4o-mini"
    workers: str = ""


@dataclass
class Standins:
    chat_port: int
    stream_port: int
    direct: Target
    # The streaming stand-in, whose CPU the stream runs report (the tools' core's share).
    stream_process: subprocess.Popen[bytes] | None = None


def start_standins(
    procs: Processes, pin: Pinning, shape: StreamShape, delay_ms: float, logs: Path
) -> Standins:
    chat_port, stream_port = free_port(), free_port()
    chat = procs.start(
        [
            *pin.prefix(pin.tools),
            str(BIN / "standin"),
            "-addr",
            f"127.0.0.1:{chat_port}",
            "-delay",
            f"{delay_ms}ms",
        ],
        log=logs / "standin-chat.log",
    )
    stream = procs.start(
        [
            *pin.prefix(pin.tools),
            str(BIN / "standin"),
            "-addr",
            f"127.0.0.1:{stream_port}",
            "-ttft",
            f"{shape.ttft_ms}ms",
            "-gap",
            f"{shape.gap_ms}ms",
            "-chunks",
            str(shape.chunks),
        ],
        log=logs / "standin-stream.log",
    )
    wait_http(f"http://127.0.0.1:{chat_port}/v1/models", chat, "the chat stand-in")
    wait_http(f"http://127.0.0.1:{stream_port}/v1/models", stream, "the stream stand-in")
    direct = Target(
        name="direct",
        chat_url=f"http://127.0.0.1:{chat_port}/v1/chat/completions",
        stream_url=f"http://127.0.0.1:{stream_port}/v1/chat/completions",
        embeddings_url=f"http://127.0.0.1:{chat_port}/v1/embeddings",
        models_url=f"http://127.0.0.1:{chat_port}/v1/models",
        process=chat,
        workers="stand-in (Go)",
    )
    return Standins(chat_port, stream_port, direct, stream)


def bench_manifest(chat_port: int, stream_port: int) -> dict[str, object]:
    """One project, three modules, no prompt rewriting: fd2 as a pure pass-through."""

    def module(name: str, port: int, endpoint: str) -> dict[str, object]:
        return {
            "module_type": "inference_endpoint",
            "name": name,
            "status": "enabled",
            # Open, explicitly (nothing is served open by omission): fd2 as a pure pass-through.
            "auth": {"mode": "none"},
            "config": {
                "model_name": "gpt-4o-mini",
                "endpoint_url": f"http://127.0.0.1:{port}/v1/{endpoint}",
                "api_key": "${environments.common.secrets.key}",
            },
        }

    keyed = {
        **module("chat_key", chat_port, "chat/completions"),
        # An API key and the in-process limiter (limits far above what one core reaches: every
        # request is admitted, as in steady state).
        "auth": {"mode": "api_key"},
        "limits": {"requests_per_second": 10_000_000, "requests_per_minute": 600_000_000},
    }
    digest = hmac.new(BENCH_PEPPER.encode(), BENCH_KEY.encode(), hashlib.sha256).hexdigest()
    return {
        "project_id": "bench",
        "api_keys": [{"id": "bench", "hash": digest}],
        "project_name": "fd2 benchmark",
        "version": "1.0.0",
        "owner": "bench",
        "environment": "development",
        "environments": {"common": {"secrets": {"key": "env:BENCH_UPSTREAM_KEY"}}},
        "modules": [
            module("chat", chat_port, "chat/completions"),
            module("stream", stream_port, "chat/completions"),
            module("embed", chat_port, "embeddings"),
            keyed,
        ],
    }


def with_anthropic_modules(
    manifest: dict[str, Any], chat_port: int, stream_port: int
) -> dict[str, Any]:
    """`chat-anthropic` and `stream-anthropic`: the same stand-ins spoken to in Anthropic's
    Messages API (the provider set in `metadata.fd2`, where the real Control Tower keeps it), so
    the translation is measured against the passthrough in the same run (bench/translation.py)."""
    settings: dict[str, Any] = {}
    for name, port in (("chat-anthropic", chat_port), ("stream-anthropic", stream_port)):
        manifest["modules"].append(
            {
                "module_type": "inference_endpoint",
                "name": name,
                "status": "enabled",
                "auth": {"mode": "none"},
                "config": {
                    "model_name": "gpt-4o-mini",
                    "endpoint_url": f"http://127.0.0.1:{port}",  # the provider appends its path
                    "api_key": "${environments.common.secrets.key}",
                },
            }
        )
        settings[name] = {"config": {"provider": "anthropic"}}
    fd2 = manifest.setdefault("metadata", {}).setdefault("fd2", {})
    fd2.setdefault("modules", {}).update(settings)
    return manifest


def translated(fd2: Target, provider: str = "anthropic") -> Target:
    """fd2's own process, load sent to the modules that translate to `provider`."""
    return replace(
        fd2,
        name=f"{fd2.name}-{provider}",
        chat_url=fd2.chat_url.replace("/bench/chat/", f"/bench/chat-{provider}/"),
        stream_url=fd2.stream_url.replace("/bench/stream/", f"/bench/stream-{provider}/"),
        embeddings_url=None,
        models_url=None,
    )


def start_fd2(
    procs: Processes,
    pin: Pinning,
    standins: Standins,
    workdir: Path,
    workers: int,
    extra: list[str] | None = None,
    *,
    name: str = "fd2",
    source: Path | None = None,
    manifest_hook: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> Target:
    """`manifest_hook`: adds to the bench manifest (e.g. bench/prompt_render.py's prompt)."""
    manifests = workdir / "manifests"
    manifests.mkdir(parents=True, exist_ok=True)
    manifest = with_anthropic_modules(  # beside the passthrough: bench/translation.py
        bench_manifest(standins.chat_port, standins.stream_port),
        standins.chat_port,
        standins.stream_port,
    )
    if manifest_hook is not None:
        manifest = manifest_hook(manifest)
    (manifests / "bench.json").write_text(json.dumps(manifest))
    port = free_port()
    env = {
        **os.environ,
        "BENCH_UPSTREAM_KEY": "bench-key",
        "BENCH_PEPPER": BENCH_PEPPER,
        # A baseline checkout older than the setting ignores it (and runs as chrt started it).
        "FD2_CPU_SCHEDULING": pin.scheduling,
    }
    if source is not None:  # another checkout's Python (same venv and native build): a baseline
        env["PYTHONPATH"] = str(source / "python")
    fd2 = str(Path(sys.executable).with_name("fd2"))
    child = procs.start(
        [
            *pin.server_prefix(),
            fd2,
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--manifests",
            str(manifests),
            "--log-level",
            "warning",
            "--api-key-pepper-ref",
            "env:BENCH_PEPPER",
            *(extra or []),
        ],
        env=env,
        log=workdir / f"{name}.log",
    )
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/healthz", child, "fd2", timeout=600)
    return Target(
        name=name,
        chat_url=f"{base}/bench/chat/v1/chat/completions",
        stream_url=f"{base}/bench/stream/v1/chat/completions",
        embeddings_url=f"{base}/bench/embed/v1/embeddings",
        models_url=f"{base}/bench/chat/v1/models",
        process=child,
        workers=f"{workers} worker(s)",
    )
