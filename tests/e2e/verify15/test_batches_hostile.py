"""Independent review of OpenAI's Batch API on fd2 (issue 15, point 3) with the official SDK:
a provider failing half the requests (each retried, then written to the error file, the batch
still `completed`), input written the way Windows tools write it, and input over the line bound."""

from __future__ import annotations

import json
import time
from typing import Any

import openai
import pytest

from ..jobs.conftest import CHAT, Gateway


def _sdk(gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/alpha/chat/v1", api_key="unused", max_retries=0)


def _line(custom_id: str, body: dict[str, Any]) -> str:
    return json.dumps(
        {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}
    )


def _done(client: openai.OpenAI, batch_id: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while (batch := client.batches.retrieve(batch_id)).status not in (
        "completed",
        "failed",
        "expired",
        "cancelled",
    ):
        assert time.monotonic() < deadline, batch
        time.sleep(0.2)
    return batch


def test_a_provider_failing_half_the_requests_fills_the_error_file(gateway: Gateway) -> None:
    gateway.start(FD2_JOBS_MAX_ATTEMPTS="2")
    client = _sdk(gateway)
    lines = []
    for n in range(6):
        model = "error-500-plain" if n % 2 else "gpt-4o-mini"
        messages = [{"role": "user", "content": f"half {n}"}]
        lines.append(_line(f"r{n}", {**CHAT, "model": model, "messages": messages}))
    # Windows line endings, a byte-order mark-free UTF-8 file ending in a blank line.
    uploaded = client.files.create(
        file=("in.jsonl", ("\r\n".join(lines) + "\r\n").encode()), purpose="batch"
    )
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    done = _done(client, batch.id)
    assert done.status == "completed", done
    assert done.request_counts is not None
    assert (done.request_counts.completed, done.request_counts.failed) == (3, 3)
    assert done.output_file_id and done.error_file_id
    output = [json.loads(x) for x in client.files.content(done.output_file_id).text.splitlines()]
    errors = [json.loads(x) for x in client.files.content(done.error_file_id).text.splitlines()]
    assert sorted(o["custom_id"] for o in output) == ["r0", "r2", "r4"]
    assert sorted(e["custom_id"] for e in errors) == ["r1", "r3", "r5"]
    for error in errors:
        assert error["response"]["status_code"] >= 500
        assert "error" in error["response"]["body"]
    # One output line per request: none written twice by the retries.
    assert len(output) + len(errors) == 6


def test_an_input_over_the_line_bound_is_refused(gateway: Gateway) -> None:
    gateway.start(FD2_BATCH_MAX_REQUESTS="3")
    client = _sdk(gateway)
    lines = [_line(f"r{n}", CHAT) for n in range(4)]
    with pytest.raises(openai.BadRequestError):
        client.files.create(file=("in.jsonl", "\n".join(lines).encode()), purpose="batch")
    assert client.files.list().data == []
