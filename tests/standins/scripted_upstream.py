"""A scripted model upstream for the Responses API and structured output tests: speaks OpenAI's
chat API (`POST /v1/chat/completions`) and Gemini's (`POST /v1beta/models/{m}:generateContent`,
`:streamGenerateContent?alt=sse`), so the same script runs passed through and translated.

Run it with ``python tests/standins/scripted_upstream.py --port 9200``.

The model name picks the script:
- ``tools``: calls the function ``get_weather`` with ``{"city": "Paris"}``; once the conversation
  holds the function's output, answers ``weather: <that output>``;
- ``json``: answers ``{"name": "Ada", "age": 36}``; ``confident``: the same as
  ``{"data": ..., "confidence": 0.9}``; ``bad-json``: always ``{"name": 5}``;
- ``reask``: answers ``{"name": 5}`` until a user message quotes schema errors ("does not match
  the required JSON Schema"), then ``{"name": "Ada", "age": 36}``;
- anything else: echoes the conversation as JSON ``{"messages": [[role, text], ...],
  "response_format": ...}``.
``POST /v1/responses`` answers as OpenAI's own Responses API would (for the passthrough), its
text echoing the ``input`` received (``error-401``: a 401 quoting the Authorization header).
Streams cut text in three pieces and function arguments in two. ``GET /_scripted/requests``
lists the bodies received (newest last); ``POST /_scripted/reset`` forgets them.
"""

from __future__ import annotations

import argparse
import itertools
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

VALID = '{"name": "Ada", "age": 36}'
INVALID = '{"name": 5}'
REASK_MARK = "does not match the required JSON Schema"
RECEIVED: deque[dict[str, Any]] = deque(maxlen=50)
_ids = itertools.count(1)


def _conversation_openai(body: dict[str, Any]) -> list[tuple[str, str]]:
    turns = []
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if message.get("tool_calls"):
            content = "call:" + ",".join(c["function"]["name"] for c in message["tool_calls"])
        turns.append((message.get("role", ""), content or ""))
    return turns


def _conversation_gemini(body: dict[str, Any]) -> list[tuple[str, str]]:
    turns = []
    system = body.get("systemInstruction")
    if system:
        turns.append(("system", "".join(p.get("text", "") for p in system.get("parts", []))))
    for content in body.get("contents", []):
        for part in content.get("parts", []):
            if "functionResponse" in part:
                response = part["functionResponse"].get("response", {})
                # Gemini's provider wraps a function's output as {"output": ...} (or "content").
                value = next(
                    (response[k] for k in ("output", "content", "result") if k in response),
                    response,
                )
                turns.append(("tool", str(value)))
            elif "functionCall" in part:
                turns.append(("assistant", "call:" + part["functionCall"]["name"]))
            else:
                role = "assistant" if content.get("role") == "model" else "user"
                turns.append((role, part.get("text", "")))
    return turns


def reply(model: str, turns: list[tuple[str, str]], fmt: Any) -> tuple[str, dict[str, Any] | None]:
    """(text, function call or None) for the conversation."""
    if model == "tools":
        if turns and turns[-1][0] == "tool":
            return f"weather: {turns[-1][1]}", None
        return "", {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    if model == "json":
        return VALID, None
    if model == "confident":
        return '{"data": ' + VALID + ', "confidence": 0.9}', None
    if model == "bad-json":
        return INVALID, None
    if model == "reask":
        asked_again = any(role == "user" and REASK_MARK in text for role, text in turns)
        return (VALID if asked_again else INVALID), None
    return orjson.dumps({"messages": turns, "response_format": fmt}).decode(), None


def _pieces(text: str, n: int) -> list[str]:
    size = max(1, -(-len(text) // n))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


async def _whole(send: Send, status: int, body: Any) -> None:
    data = orjson.dumps(body)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


async def _events(send: Send, frames: list[bytes]) -> None:
    headers = [(b"content-type", b"text/event-stream")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"".join(frames)})


def _usage() -> dict[str, int]:
    return {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}


async def _openai(body: dict[str, Any], send: Send) -> None:
    model = str(body.get("model", ""))
    text, call = reply(model, _conversation_openai(body), body.get("response_format"))
    n = next(_ids)
    base = {"id": f"chatcmpl-s{n}", "created": 0, "model": model}
    tool_calls = None
    if call is not None:
        tool_calls = [{"id": f"call_s{n}", "type": "function", "function": call}]
    if not body.get("stream"):
        message = {"role": "assistant", "content": text or None}
        if tool_calls:
            message["tool_calls"] = tool_calls
        finish = "tool_calls" if call else "stop"
        choice = {"index": 0, "message": message, "finish_reason": finish}
        answer = {**base, "object": "chat.completion", "choices": [choice], "usage": _usage()}
        await _whole(send, 200, answer)
        return

    def frame(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        chunk = {**base, "object": "chat.completion.chunk", "choices": [choice], **extra}
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    frames = [frame({"role": "assistant", "content": ""})]
    if text:
        frames += [frame({"content": piece}) for piece in _pieces(text, 3)]
    if call is not None:
        first, second = _pieces(call["arguments"], 2)[:2]
        start = {"index": 0, "id": f"call_s{n}", "type": "function"}
        start["function"] = {"name": call["name"], "arguments": first}
        frames.append(frame({"tool_calls": [start]}))
        frames.append(frame({"tool_calls": [{"index": 0, "function": {"arguments": second}}]}))
    frames.append(frame({}, "tool_calls" if call else "stop"))
    usage_chunk = {**base, "object": "chat.completion.chunk", "choices": [], "usage": _usage()}
    frames.append(b"data: " + orjson.dumps(usage_chunk) + b"\n\n")
    frames.append(b"data: [DONE]\n\n")
    await _events(send, frames)


async def _responses(scope: Scope, body: dict[str, Any], send: Send) -> None:
    """OpenAI's own /v1/responses, for the passthrough: the text echoes the input received."""
    if body.get("model") == "error-401":
        headers = dict(scope["headers"])
        quoted = headers.get(b"authorization", b"").decode()
        error = {
            "message": f"Incorrect API key provided: {quoted}",
            "type": "invalid_request_error",
        }
        await _whole(send, 401, {"error": {**error, "code": "invalid_api_key", "param": None}})
        return
    n = next(_ids)
    text = orjson.dumps({"input": body.get("input"), "extra": sorted(body)}).decode()
    item = {
        "type": "message",
        "id": f"msg_up{n}",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }
    response = {
        "id": f"resp_upstream_{n}",
        "object": "response",
        "created_at": 0,
        "status": "completed",
        "model": body.get("model"),
        "output": [item],
        "usage": {"input_tokens": 5, "output_tokens": 3, "total_tokens": 8},
    }
    if not body.get("stream"):
        await _whole(send, 200, response)
        return
    seq = itertools.count()

    def event(kind: str, **payload: Any) -> bytes:
        data = {"type": kind, "sequence_number": next(seq), **payload}
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"

    opening = {**response, "status": "in_progress", "output": []}
    frames = [event("response.created", response=opening)]
    empty = {**item, "status": "in_progress", "content": []}
    frames.append(event("response.output_item.added", output_index=0, item=empty))
    part = {"type": "output_text", "text": "", "annotations": []}
    where = {"item_id": item["id"], "output_index": 0, "content_index": 0}
    frames.append(event("response.content_part.added", part=part, **where))
    frames.extend(
        event("response.output_text.delta", delta=piece, logprobs=[], **where)
        for piece in _pieces(text, 3)
    )
    frames.append(event("response.output_item.done", output_index=0, item=item))
    frames.append(event("response.completed", response=response))
    await _events(send, frames)


def _gemini_usage() -> dict[str, int]:
    return {"promptTokenCount": 11, "candidatesTokenCount": 7, "totalTokenCount": 18}


async def _gemini(model: str, body: dict[str, Any], stream: bool, send: Send) -> None:
    fmt = (body.get("generationConfig") or {}).get("responseMimeType")
    text, call = reply(model, _conversation_gemini(body), fmt)
    parts: list[dict[str, Any]] = []
    if call is not None:
        parts.append(
            {"functionCall": {"name": call["name"], "args": orjson.loads(call["arguments"])}}
        )
    if not stream:
        if text:
            parts.insert(0, {"text": text})
        candidate = {
            "content": {"role": "model", "parts": parts},
            "finishReason": "STOP",
            "index": 0,
        }
        await _whole(send, 200, {"candidates": [candidate], "usageMetadata": _gemini_usage()})
        return
    frames = []
    pieces = _pieces(text, 3) if text else []
    for index, piece in enumerate(pieces):
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": piece}]}}
        if index == len(pieces) - 1 and call is None:
            candidate["finishReason"] = "STOP"
        frames.append(b"data: " + orjson.dumps({"candidates": [candidate]}) + b"\r\n\r\n")
    if call is not None:
        candidate = {"content": {"role": "model", "parts": parts}, "finishReason": "STOP"}
        frames.append(b"data: " + orjson.dumps({"candidates": [candidate]}) + b"\r\n\r\n")
    last = {"candidates": [], "usageMetadata": _gemini_usage()}
    frames.append(b"data: " + orjson.dumps(last) + b"\r\n\r\n")
    await _events(send, frames)


async def _read(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    path: str = scope["path"]
    if path == "/_scripted/requests":
        await _whole(send, 200, list(RECEIVED))
        return
    if path == "/_scripted/reset":
        RECEIVED.clear()
        await _whole(send, 200, {})
        return
    body = orjson.loads(await _read(receive) or b"{}")
    RECEIVED.append({"path": path, "body": body})
    if path.endswith("/responses"):
        await _responses(scope, body, send)
        return
    if path.endswith("/chat/completions"):
        await _openai(body, send)
        return
    if path.startswith("/v1beta/models/") and ":" in path:
        model, _, method = path.removeprefix("/v1beta/models/").partition(":")
        await _gemini(model, body, method.startswith("streamGenerateContent"), send)
        return
    await _whole(send, 404, {"error": {"message": "no such path", "type": "invalid_request_error"}})


def main(argv: list[str] | None = None) -> None:
    from serving import serve  # beside this script, which Python puts first on sys.path

    parser = argparse.ArgumentParser(description="scripted model upstream (OpenAI and Gemini)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9200)
    args = parser.parse_args(argv)
    serve(f"{__file__}:app", host=args.host, port=args.port, workers=1)


if __name__ == "__main__":
    main()
