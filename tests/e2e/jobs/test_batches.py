"""OpenAI's Batch API through the official SDK against fd2, over the upstream stand-in."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import openai

from ..support import assert_openai_error
from .conftest import CHAT, Gateway


def _sdk(gateway: Gateway, project: str = "alpha") -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{gateway.url}/{project}/chat/v1", api_key="unused", max_retries=0
    )


def _line(custom_id: str, body: dict[str, Any], url: str = "/v1/chat/completions") -> str:
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": url, "body": body})


def _wait(client: openai.OpenAI, batch_id: str, *, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        batch = client.batches.retrieve(batch_id)
        if not seen or seen[-1] != batch.status:
            seen.append(batch.status)
        if batch.status in ("completed", "failed", "expired", "cancelled"):
            return batch, seen
        assert time.monotonic() < deadline, f"batch still {batch.status}"
        time.sleep(0.1)


def test_the_sdk_batch_flow_runs_end_to_end(gateway: Gateway) -> None:
    gateway.start()
    lines = [
        _line(f"req-{n}", {**CHAT, "messages": [{"role": "user", "content": f"q{n}"}]})
        for n in range(5)
    ]
    lines.append(_line("bad-one", {**CHAT, "model": "error-400"}))
    client = _sdk(gateway)
    uploaded = client.files.create(file=("input.jsonl", "\n".join(lines).encode()), purpose="batch")
    assert uploaded.purpose == "batch"
    assert uploaded.filename == "input.jsonl"
    assert client.files.retrieve(uploaded.id).bytes == uploaded.bytes
    assert client.files.content(uploaded.id).text.splitlines() == lines
    batch = client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"purpose": "e2e"},
    )
    assert batch.status in ("validating", "in_progress")
    assert batch.request_counts is not None and batch.request_counts.total == 6
    done, seen = _wait(client, batch.id)
    assert done.status == "completed", seen
    assert done.request_counts is not None
    assert (done.request_counts.completed, done.request_counts.failed) == (5, 1)
    assert done.completed_at is not None and done.in_progress_at is not None
    assert done.metadata == {"purpose": "e2e"}
    assert done.output_file_id and done.error_file_id
    output = [json.loads(x) for x in client.files.content(done.output_file_id).text.splitlines()]
    assert sorted(item["custom_id"] for item in output) == [f"req-{n}" for n in range(5)]
    for item in output:
        assert item["error"] is None
        assert item["response"]["status_code"] == 200
        content = json.loads(item["response"]["body"]["choices"][0]["message"]["content"])
        assert content["messages"][0]["content"] == "q" + item["custom_id"].removeprefix("req-")
    (error,) = [json.loads(x) for x in client.files.content(done.error_file_id).text.splitlines()]
    assert error["custom_id"] == "bad-one"
    assert error["response"]["status_code"] == 400
    assert error["response"]["body"]["error"]["type"] == "invalid_request_error"
    listed = client.batches.list()
    assert [b.id for b in listed.data] == [batch.id]
    files = client.files.list()
    assert {f.id for f in files.data} == {uploaded.id, done.output_file_id, done.error_file_id}
    assert [f.id for f in client.files.list(purpose="batch").data] == [uploaded.id]


def test_a_cancelled_batch_ends_cancelled_with_what_finished(gateway: Gateway) -> None:
    gateway.start(FD2_JOBS_WORKERS="1")
    lines = [_line("fast", CHAT)] + [
        _line(f"slow-{n}", {**CHAT, "model": "slow-1500"}) for n in range(6)
    ]
    client = _sdk(gateway)
    uploaded = client.files.create(file=("in.jsonl", "\n".join(lines).encode()), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    time.sleep(1.0)
    cancelling = client.batches.cancel(batch.id)
    assert cancelling.status in ("cancelling", "cancelled")
    done, seen = _wait(client, batch.id)
    assert done.status == "cancelled", seen
    assert done.cancelled_at is not None
    errors = [
        json.loads(x) for x in client.files.content(done.error_file_id or "").text.splitlines()
    ]
    assert {e["error"]["code"] for e in errors if e["error"]} == {"batch_cancelled"}
    assert len(errors) >= 4


def test_bad_batch_input_is_refused(gateway: Gateway) -> None:
    gateway.start()
    client = _sdk(gateway)
    bad_files = [
        "not json",
        _line("a", CHAT) + "\n" + _line("a", CHAT),  # custom_id twice
        _line("a", CHAT, url="/v1/nothing"),
        json.dumps({"custom_id": "a", "method": "GET", "url": "/v1/chat/completions", "body": {}}),
        _line("a", {**CHAT, "stream": True}),
        "",
    ]
    for content in bad_files:
        try:
            client.files.create(file=("in.jsonl", content.encode()), purpose="batch")
        except openai.BadRequestError as exc:
            assert exc.status_code == 400
        else:
            raise AssertionError(f"accepted: {content!r}")
    with httpx.Client(base_url=f"{gateway.url}/alpha/chat", timeout=5) as http:
        missing = http.post(
            "/v1/batches",
            json={
                "input_file_id": "file-nothing",
                "endpoint": "/v1/chat/completions",
                "completion_window": "24h",
            },
        )
        assert missing.status_code == 404
        assert_openai_error(missing.content, status=404)
        window = http.post(
            "/v1/batches",
            json={
                "input_file_id": "x",
                "endpoint": "/v1/chat/completions",
                "completion_window": "1h",
            },
        )
        assert window.status_code == 400


def test_a_file_is_not_found_through_another_project_or_module(gateway: Gateway) -> None:
    gateway.start()
    uploaded = _sdk(gateway, "alpha").files.create(
        file=("in.jsonl", _line("a", CHAT).encode()), purpose="batch"
    )
    other = openai.OpenAI(base_url=f"{gateway.url}/alpha/other/v1", api_key="unused", max_retries=0)
    for client in (_sdk(gateway, "beta"), other):
        try:
            client.files.retrieve(uploaded.id)
        except openai.NotFoundError:
            pass
        else:
            raise AssertionError("a file was found through another route")
        try:
            client.batches.create(
                input_file_id=uploaded.id,
                endpoint="/v1/chat/completions",
                completion_window="24h",
            )
        except openai.NotFoundError:
            pass
        else:
            raise AssertionError("a batch was made of another route's file")


def test_a_batch_made_while_no_worker_runs_is_done_after_a_restart(gateway: Gateway) -> None:
    gateway.start(FD2_JOBS_WORKERS="0")  # this gateway takes the batch but runs nothing
    client = _sdk(gateway)
    lines = [_line(f"r{n}", CHAT) for n in range(3)]
    uploaded = client.files.create(file=("in.jsonl", "\n".join(lines).encode()), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    time.sleep(1.0)
    assert client.batches.retrieve(batch.id).status == "validating"
    gateway.stop()
    gateway.start(FD2_JOBS_WORKERS="4")
    done, seen = _wait(_sdk(gateway), batch.id)
    assert done.status == "completed", seen
    assert done.request_counts is not None and done.request_counts.completed == 3


def test_a_batch_cancelled_before_its_jobs_are_made_ends_cancelled(gateway: Gateway) -> None:
    gateway.start(FD2_JOBS_WORKERS="0")
    client = _sdk(gateway)
    uploaded = client.files.create(
        file=("in.jsonl", "\n".join(_line(f"r{n}", CHAT) for n in range(3)).encode()),
        purpose="batch",
    )
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert client.batches.cancel(batch.id).status == "cancelling"
    gateway.stop()
    gateway.start(FD2_JOBS_WORKERS="2")
    done, seen = _wait(_sdk(gateway), batch.id)
    assert done.status == "cancelled", seen
    assert done.output_file_id is None
