"""Graceful shutdown: SIGTERM lets an in-flight stream finish."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import openai

from .conftest import (
    PrivateFd2,
    Service,
    build_manifest_dir,
    fd2_argv,
    fd2_env,
    free_port,
    start_service,
)


def test_sigterm_lets_an_inflight_stream_finish(private_fd2: PrivateFd2) -> None:
    server = private_fd2.service
    with openai.OpenAI(
        base_url=f"{server.url}/acme/chat/v1", api_key="unused", max_retries=0, timeout=30
    ) as sdk:
        contents: list[str] = []
        with sdk.chat.completions.create(
            model="chunks-30-gap-50",
            messages=[{"role": "user", "content": "keep going"}],
            stream=True,
        ) as stream:
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    contents.append(chunk.choices[0].delta.content)
                    if len(contents) == 2:
                        server.signal(signal.SIGTERM)
            finish = chunk.choices[0].finish_reason if chunk.choices else None
    assert contents == [f"{i};" for i in range(1, 31)]
    assert finish == "stop"
    assert server.wait_exit(20) is not None, "fd2 did not exit after the stream finished"


def test_shutdown_is_bounded_by_the_shutdown_timeout(tmp_path: Path, standin: Service) -> None:
    """A stream longer than --shutdown-timeout does not hold the process: it ends in time."""
    manifests = build_manifest_dir(tmp_path / "manifests", standin.address)
    port = free_port()
    server = start_service(
        "fd2-bounded",
        fd2_argv(
            "serve", "--port", str(port), "--manifests", str(manifests), "--shutdown-timeout", "2"
        ),
        port=port,
        ready_path="/healthz",
        log_dir=tmp_path,
        env=fd2_env(),
    )
    try:
        with openai.OpenAI(
            base_url=f"{server.url}/acme/chat/v1", api_key="unused", max_retries=0, timeout=60
        ) as sdk:
            stream = sdk.chat.completions.create(
                model="chunks-300-gap-100",  # 30 s of stream
                messages=[{"role": "user", "content": "long"}],
                stream=True,
            )
            next(iter(stream))
            began = time.monotonic()
            server.signal(signal.SIGTERM)
            code = server.wait_exit(15)
            assert code is not None, "fd2 ignored its shutdown timeout"
            assert time.monotonic() - began < 8
            stream.close()
    finally:
        server.stop()
