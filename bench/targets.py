"""What the load is sent to: the stand-in directly, fd2 in front of it, and (with --peers) peers.

Each target serves two upstreams: `chat` (whole answers, zero or fixed delay) and `stream`
(streamed answers on the streaming schedule). A target knows its URLs, extra headers and the
process whose CPU and memory are measured.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from procs import BIN, Pinning, Processes, free_port, wait_http


def chat_body(model: str) -> str:
    return f'{{"model":"{model}","messages":[{{"role":"user","content":"Say hello."}}]}}'


def stream_body(model: str) -> str:
    return f'{{"model":"{model}","stream":true,"messages":[{{"role":"user","content":"Count."}}]}}'


@dataclass
class StreamShape:
    ttft_ms: float
    chunks: int
    gap_ms: float


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
    return Standins(chat_port, stream_port, direct)


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

    return {
        "project_id": "bench",
        "project_name": "fd2 benchmark",
        "version": "1.0.0",
        "owner": "bench",
        "environment": "development",
        "environments": {"common": {"secrets": {"key": "env:BENCH_UPSTREAM_KEY"}}},
        "modules": [
            module("chat", chat_port, "chat/completions"),
            module("stream", stream_port, "chat/completions"),
            module("embed", chat_port, "embeddings"),
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
) -> Target:
    manifests = workdir / "manifests"
    manifests.mkdir(parents=True, exist_ok=True)
    (manifests / "bench.json").write_text(
        json.dumps(
            with_anthropic_modules(  # beside the passthrough: bench/translation.py
                bench_manifest(standins.chat_port, standins.stream_port),
                standins.chat_port,
                standins.stream_port,
            )
        )
    )
    port = free_port()
    env = {**os.environ, "BENCH_UPSTREAM_KEY": "bench-key"}
    fd2 = str(Path(sys.executable).with_name("fd2"))
    child = procs.start(
        [
            *pin.prefix(pin.server),
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
            *(extra or []),
        ],
        env=env,
        log=workdir / "fd2.log",
    )
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/healthz", child, "fd2", timeout=600)
    return Target(
        name="fd2",
        chat_url=f"{base}/bench/chat/v1/chat/completions",
        stream_url=f"{base}/bench/stream/v1/chat/completions",
        embeddings_url=f"{base}/bench/embed/v1/embeddings",
        models_url=f"{base}/bench/chat/v1/models",
        process=child,
        workers=f"{workers} worker(s)",
    )
