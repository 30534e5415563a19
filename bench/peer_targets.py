"""Peer gateways for --peers, installed by bench/peers/install.sh into bench/.peers (git-ignored).

Each peer gets the same core(s) as fd2, the same stand-ins and the same load.
"""

from __future__ import annotations

import os
from pathlib import Path

from procs import Pinning, Processes, free_port, wait_http
from targets import Standins, Target

PEERS = Path(__file__).resolve().parent / ".peers"


def start_peers(procs: Processes, pin: Pinning, standins: Standins, workdir: Path) -> list[Target]:
    missing = [
        p for p in ("litellm/bin/litellm", "portkey/node_modules/.bin") if not (PEERS / p).exists()
    ]
    if missing:
        raise SystemExit(
            "peers are not installed: run bench/peers/install.sh (or make bench-peers)"
        )
    return [
        start_litellm(procs, pin, standins, workdir),
        start_portkey(procs, pin, standins, workdir),
    ]


def start_litellm(procs: Processes, pin: Pinning, standins: Standins, workdir: Path) -> Target:
    config = workdir / "litellm.yaml"
    lines = ["model_list:"]
    for name, port in (("bench-chat", standins.chat_port), ("bench-stream", standins.stream_port)):
        lines += [
            f"  - model_name: {name}",
            "    litellm_params:",
            "      model: openai/gpt-4o-mini",
            f"      api_base: http://127.0.0.1:{port}/v1",
            "      api_key: bench-key",
        ]
    lines += ["litellm_settings:", "  telemetry: false", "  drop_params: true"]
    config.write_text("\n".join(lines) + "\n")
    port = free_port()
    env = {**os.environ, "LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False"}
    child = procs.start(
        [
            *pin.server_prefix(),
            str(PEERS / "litellm" / "bin" / "litellm"),
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--num_workers",
            "1",
        ],
        env=env,
        log=workdir / "litellm.log",
    )
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/health/liveliness", child, "LiteLLM", timeout=180)
    return Target(
        name="litellm",
        chat_url=f"{base}/v1/chat/completions",
        stream_url=f"{base}/v1/chat/completions",
        process=child,
        chat_model="bench-chat",
        stream_model="bench-stream",
        workers="1 worker (uvicorn)",
    )


def start_portkey(procs: Processes, pin: Pinning, standins: Standins, workdir: Path) -> Target:
    port = free_port()
    entry = (
        PEERS / "portkey" / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"
    )
    child = procs.start(
        [*pin.server_prefix(), "node", "--require", str(PEERS.parent / "peers" / "loopback.cjs"),
         str(entry), f"--port={port}", "--headless"],
        log=workdir / "portkey.log",
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/", child, "Portkey", timeout=60)

    def headers(upstream_port: int) -> list[str]:
        return [
            "x-portkey-provider: openai",
            f"x-portkey-custom-host: http://127.0.0.1:{upstream_port}/v1",
            "Authorization: Bearer bench-key",
        ]

    return Target(
        name="portkey",
        chat_url=f"{base}/v1/chat/completions",
        stream_url=f"{base}/v1/chat/completions",
        process=child,
        chat_headers=headers(standins.chat_port),
        stream_headers=headers(standins.stream_port),
        workers="1 Node process",
    )
