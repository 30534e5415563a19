"""The OpenAI upstream stand-in itself, over a real socket: formats, behaviours, counters."""

from __future__ import annotations

import base64
import json
import struct
import threading
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from .conftest import Service, StandinStats
from .support import chat_body, raw_request, sse_events, wait_until


@pytest.fixture
def up(standin: Service) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=standin.url, timeout=15.0) as client:
        yield client


def _chat(up: httpx.Client, model: str, **extra: object) -> httpx.Response:
    return up.post("/v1/chat/completions", content=chat_body(model, **extra))


def _stream_events(up: httpx.Client, model: str, **extra: object) -> list[bytes]:
    response = _chat(up, model, stream=True, **extra)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return sse_events(response.content)


def test_chat_answer_describes_the_request(up: httpx.Client, standin: Service) -> None:
    response = up.post(
        "/v1/chat/completions",
        json={
            "model": "standin-echo",
            "messages": [{"role": "user", "content": "hi there"}],
            "max_tokens": 5,
            "temperature": 0.3,
            "top_p": 0.4,
        },
        headers={"authorization": "Bearer k-1", "x-request-id": "rid-1"},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["total_tokens"] == (
        body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    )
    seen = json.loads(body["choices"][0]["message"]["content"])
    assert seen == {
        "model": "standin-echo",
        "messages": [{"role": "user", "content": "hi there"}],
        "max_tokens": 5,
        "max_completion_tokens": None,
        "temperature": 0.3,
        "top_p": 0.4,
        "authorization": "Bearer k-1",
        "x_request_id": "rid-1",
        "port": standin.port,
        "path": "/v1/chat/completions",
        "client_port": seen["client_port"],
    }
    assert isinstance(seen["client_port"], int)
    assert response.headers["x-request-id"].startswith("req_standin_")


def test_keep_alive_reuses_one_connection(up: httpx.Client) -> None:
    ports = {json.loads(_chat(up, "m").json()["choices"][0]["message"]["content"])["client_port"]}
    for _ in range(5):
        content = _chat(up, "m").json()["choices"][0]["message"]["content"]
        ports.add(json.loads(content)["client_port"])
    assert len(ports) == 1


def test_stream_format(up: httpx.Client) -> None:
    events = _stream_events(up, "chunks-5")
    assert events[-1] == b"[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    assert len({chunk["id"] for chunk in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[0]["standin"]["model"] == "chunks-5"
    contents = [chunk["choices"][0]["delta"].get("content") for chunk in chunks[1:-1]]
    assert contents == ["1;", "2;", "3;", "4;", "5;"]
    assert chunks[-1]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }
    assert all("usage" not in chunk for chunk in chunks)


def test_stream_default_chunk_count_and_usage(up: httpx.Client) -> None:
    events = _stream_events(up, "standin-echo", stream_options={"include_usage": True})
    assert events[-1] == b"[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    usage_chunk = chunks[-1]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["completion_tokens"] == 8
    assert all(chunk["usage"] is None for chunk in chunks[:-1])
    assert len(chunks) == 1 + 8 + 1 + 1


def test_gap_spaces_chunks(up: httpx.Client) -> None:
    started = time.monotonic()
    events = _stream_events(up, "chunks-4-gap-100")
    assert time.monotonic() - started >= 0.35
    assert len(events) == 1 + 4 + 1 + 1


def test_slow_waits_before_answering(up: httpx.Client) -> None:
    started = time.monotonic()
    assert _chat(up, "slow-300").status_code == 200
    assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize(
    ("model", "status", "message"),
    [("error-400", 400, "stand-in says no"), ("error-429", 429, "stand-in says no: slow down")],
)
def test_openai_errors(up: httpx.Client, model: str, status: int, message: str) -> None:
    for extra in ({}, {"stream": True}):
        response = _chat(up, model, **extra)
        assert response.status_code == status
        assert response.headers["content-type"] == "application/json"
        assert response.json()["error"]["message"] == message


def test_plain_500_and_garbage(up: httpx.Client) -> None:
    plain = _chat(up, "error-500-plain")
    assert plain.status_code == 500
    assert plain.headers["content-type"].startswith("text/plain")
    garbage = _chat(up, "garbage")
    assert garbage.status_code == 200
    with pytest.raises(ValueError):
        json.loads(garbage.content)


def test_stream_break_drops_the_connection(standin: Service) -> None:
    response = raw_request(
        standin.port,
        "POST",
        b"/v1/chat/completions",
        [(b"content-type", b"application/json")],
        chat_body("stream-break", stream=True),
    )
    assert response.status == 200
    assert not response.complete
    contents = [json.loads(e)["choices"][0]["delta"]["content"] for e in sse_events(response.body)]
    assert contents == ["", "1;", "2;", "3;"]


def test_stream_break_is_an_error_for_httpx(up: httpx.Client) -> None:
    with (
        pytest.raises(httpx.RemoteProtocolError),
        up.stream(
            "POST", "/v1/chat/completions", content=chat_body("stream-break", stream=True)
        ) as response,
    ):
        for _ in response.iter_bytes():
            pass


def test_no_done_ends_cleanly_without_done(standin: Service) -> None:
    response = raw_request(
        standin.port, "POST", b"/v1/chat/completions", [], chat_body("no-done", stream=True)
    )
    assert response.complete
    events = sse_events(response.body)
    assert b"[DONE]" not in events
    assert json.loads(events[-1])["choices"][0]["finish_reason"] == "stop"


def test_completions(up: httpx.Client) -> None:
    response = up.post("/v1/completions", json={"model": "m", "prompt": "say hi"})
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "text_completion"
    assert json.loads(body["choices"][0]["text"])["prompt"] == "say hi"
    events = sse_events(
        up.post(
            "/v1/completions", json={"model": "chunks-2", "prompt": "x", "stream": True}
        ).content
    )
    assert events[-1] == b"[DONE]"
    texts = [json.loads(event)["choices"][0]["text"] for event in events[:-1]]
    assert texts == ["", "1;", "2;", ""]


def test_embeddings_are_deterministic(up: httpx.Client) -> None:
    def embed(**body: object) -> list[dict[str, object]]:
        response = up.post("/v1/embeddings", json={"model": "e", **body})
        assert response.status_code == 200
        return list(response.json()["data"])

    first = embed(input=["alpha", "beta"])
    again = embed(input=["alpha", "beta"])
    assert first == again
    assert first[0]["embedding"] != first[1]["embedding"]
    assert len(first[0]["embedding"]) == 8  # type: ignore[arg-type]
    single = embed(input="alpha")
    assert single[0]["embedding"] == first[0]["embedding"]
    assert len(embed(input="alpha", dimensions=3)[0]["embedding"]) == 3  # type: ignore[arg-type]
    encoded = embed(input="alpha", encoding_format="base64")[0]["embedding"]
    decoded = struct.unpack("<8f", base64.b64decode(encoded))  # type: ignore[arg-type]
    assert decoded == pytest.approx(first[0]["embedding"], abs=1e-6)


def test_models_and_unknown_routes(up: httpx.Client) -> None:
    models = up.get("/v1/models")
    assert models.status_code == 200
    assert "gpt-4o-mini" in [model["id"] for model in models.json()["data"]]
    assert up.get("/v1/nothing").status_code == 404
    wrong = up.get("/v1/chat/completions")
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "POST"


def test_official_sdk_understands_the_standin(standin: Service) -> None:
    with openai.OpenAI(
        base_url=f"{standin.url}/v1", api_key="sdk-key", max_retries=0, timeout=15
    ) as sdk:
        answer = sdk.chat.completions.create(
            model="standin-echo", messages=[{"role": "user", "content": "hi"}]
        )
        assert json.loads(answer.choices[0].message.content or "")["authorization"] == (
            "Bearer sdk-key"
        )
        stream = sdk.chat.completions.create(
            model="chunks-3",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "1;2;3;"
        assert chunks[-1].usage is not None
        assert chunks[-1].usage.completion_tokens == 3
        vectors = sdk.embeddings.create(model="e", input=["a", "b"])
        assert [len(item.embedding) for item in vectors.data] == [8, 8]
        assert "standin-echo" in [model.id for model in sdk.models.list()]
        with pytest.raises(openai.BadRequestError) as refused:
            sdk.chat.completions.create(model="error-400", messages=[])
        assert "stand-in says no" in refused.value.message


def test_counters_count_completed_and_reset(up: httpx.Client, standin_stats: StandinStats) -> None:
    standin_stats.settle()
    _chat(up, "m")
    _stream_events(up, "chunks-2")
    stats = standin_stats.get()
    assert stats == {"started": 2, "completed": 2, "cancelled": 0, "open_streams": 0}
    standin_stats.reset()
    assert standin_stats.get() == {"started": 0, "completed": 0, "cancelled": 0, "open_streams": 0}


def test_client_leaving_a_slow_request_counts_as_cancelled(
    standin: Service, standin_stats: StandinStats
) -> None:
    standin_stats.settle()
    with (
        httpx.Client(base_url=standin.url, timeout=0.3) as impatient,
        pytest.raises(httpx.ReadTimeout),
    ):
        _chat(impatient, "slow-5000")
    stats = wait_until(
        lambda: (s := standin_stats.get())["cancelled"] == 1 and s,
        timeout=2.0,
        what="the stand-in to count the cancelled request",
    )
    assert stats["completed"] == 0


def test_client_leaving_a_stream_counts_as_cancelled(
    up: httpx.Client, standin_stats: StandinStats
) -> None:
    standin_stats.settle()
    body = chat_body("chunks-200-gap-50", stream=True)
    with up.stream("POST", "/v1/chat/completions", content=body) as response:
        lines = response.iter_lines()
        next(lines)
        assert wait_until(lambda: standin_stats.get()["open_streams"] == 1, timeout=2.0)
    stats = wait_until(
        lambda: (s := standin_stats.get())["cancelled"] == 1 and s["open_streams"] == 0 and s,
        timeout=2.0,
        what="the stand-in to notice the client left",
    )
    assert stats["completed"] == 0


def test_many_concurrent_streams(standin: Service, standin_stats: StandinStats) -> None:
    standin_stats.settle()
    failures: list[str] = []

    def run() -> None:
        with httpx.Client(base_url=standin.url, timeout=15.0) as own:
            for _ in range(5):
                events = _stream_events(own, "chunks-10-gap-5")
                if len(events) != 13:
                    failures.append(f"{len(events)} events")

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not failures
    assert standin_stats.get() == {
        "started": 40,
        "completed": 40,
        "cancelled": 0,
        "open_streams": 0,
    }
