"""Locust profile: streamed chat completions; time to first token and the whole stream are
reported as their own entries ("stream: first token", "stream: full"), next to the request itself.

    .venv/bin/python bench/locust/run.py stream
    locust -f bench/locust/stream.py --headless -u 64 -r 16 -t 1m --host http://fd2:8080
"""

from __future__ import annotations

import time

import orjson
from common import CHECK_ORDER, STREAM, STREAM_PATH

from locust import HttpUser, task


class StreamUser(HttpUser):
    @task
    def stream(self) -> None:
        start = time.perf_counter()
        first: float | None = None
        chunks, problem, done = 0, None, False
        with self.client.post(
            STREAM_PATH, json=STREAM, name="stream: request", stream=True, catch_response=True
        ) as resp:
            if resp.status_code != 200:
                resp.failure(f"HTTP {resp.status_code}")
                return
            for line in resp.iter_lines():
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    done = True
                    break
                try:
                    delta = orjson.loads(data)["choices"][0]["delta"]
                except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
                    problem = "a chunk is not a chat completion chunk"
                    break
                content = delta.get("content")
                if not content:
                    continue
                if first is None:
                    first = time.perf_counter()
                if CHECK_ORDER and content != f"t{chunks} ":
                    problem = f"chunk {chunks} out of order: {content!r}"
                    break
                chunks += 1
            if problem is None and not done:
                problem = "the stream ended without [DONE]"
            if problem is None and first is None:
                problem = "no content chunk"
            if problem:
                resp.failure(problem)
            else:
                resp.success()
        end = time.perf_counter()
        report = self.environment.events.request.fire
        exc = RuntimeError(problem) if problem else None
        if first is not None:
            ttft_ms = (first - start) * 1000
            report(request_type="SSE", name="stream: first token", response_time=ttft_ms,
                   response_length=0, exception=exc, context={})  # fmt: skip
        report(request_type="SSE", name="stream: full", response_time=(end - start) * 1000,
               response_length=chunks, exception=exc, context={})  # fmt: skip
