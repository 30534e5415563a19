"""Graceful shutdown: SIGTERM lets an in-flight stream finish."""

from __future__ import annotations

import signal

import openai

from .conftest import PrivateFd2


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
