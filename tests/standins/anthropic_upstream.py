"""A scripted assistant behind Anthropic's Messages API, and the same script behind OpenAI's chat
completions: one raw ASGI app served by Granian, so the same end-to-end tests run over fd2's
Anthropic provider and over its OpenAI passthrough.

Run it with ``python tests/standins/anthropic_upstream.py --host 127.0.0.1 --port 9200``.

``POST /v1/messages`` speaks Anthropic (plain, and SSE with ``message_start``, ``ping``,
``content_block_start/delta/stop`` with ``text_delta`` and ``input_json_delta``,
``message_delta``, ``message_stop``; errors as ``{"type": "error", "error": {...}}``).
``POST /v1/chat/completions`` speaks OpenAI (plain, and SSE chunks ending with ``[DONE]``).
Streams are written in 7-byte pieces, each flushed alone, so events arrive cut anywhere.

The script, the same in both formats:

- the last turn holds tool results: answers ``Tool said: <the results, joined by "; ">``;
- tools are offered: calls the first tool once per city named in the question among Paris and
  Tokyo (Paris when none is), with input ``{"location": <city>}``;
- otherwise: ``You said: <the last user text>``, prefixed with ``[<system>] `` when there is a
  system prompt.

Usage: 12 input tokens (4 of them read from the cache), 1 output token per piece of text.
Models named ``error-401``, ``error-429`` (``retry-after: 7`` and rate-limit headers),
``error-529`` (overloaded; 503 on the OpenAI side) answer that error in either shape;
``stream-error`` streams some text, then an ``error`` event (overloaded; Anthropic side only).
``GET /_standin/requests`` returns the path, headers and JSON body of the last requests (newest
last).
"""

from __future__ import annotations

import argparse
import itertools
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

import orjson

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

PIECE_BYTES = 7
INPUT_TOKENS, CACHED_TOKENS = 12, 4
CITIES = ("Paris", "Tokyo")
RECENT: deque[dict[str, Any]] = deque(maxlen=32)
_ids = itertools.count(1)


# --- the script, on a neutral reading of either request format


def _script(system: str, question: str, tools: list[str], results: list[str]) -> Any:
    """A text answer (str) or the tool calls to make [(name, input)]."""
    if results:
        return "Tool said: " + "; ".join(results)
    if tools:
        cities = [city for city in CITIES if city in question] or ["Paris"]
        return [(tools[0], {"location": city}) for city in cities]
    return (f"[{system}] " if system else "") + f"You said: {question}"


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _read_anthropic(body: Mapping[str, Any]) -> Any:
    system = _text_of(body.get("system", ""))
    messages = body.get("messages") or [{}]
    last = messages[-1].get("content")
    results: list[str] = []
    question = _text_of(last) if isinstance(last, str) else ""
    if isinstance(last, list):
        for block in last:
            if block.get("type") == "tool_result":
                results.append(_text_of(block.get("content", "")))
            elif block.get("type") == "text":
                question += block.get("text", "")
    tools = [tool["name"] for tool in body.get("tools", [])]
    return _script(system, question, tools, results)


def _read_openai(body: Mapping[str, Any]) -> Any:
    messages = body.get("messages") or [{}]
    system = " ".join(_text_of(m.get("content")) for m in messages if m.get("role") == "system")
    results = []
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        results.insert(0, _text_of(message.get("content")))
    question = _text_of(messages[-1].get("content")) if messages[-1].get("role") == "user" else ""
    tools = [tool["function"]["name"] for tool in body.get("tools", [])]
    return _script(system, question, tools, results)


def _pieces(text: str, size: int = 4) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


# --- Anthropic's wire format


def _anthropic_error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


_ANTHROPIC_ERRORS = {
    "error-401": (401, "authentication_error", "invalid x-api-key", []),
    "error-429": (
        429,
        "rate_limit_error",
        "Number of requests has exceeded your per-minute rate limit",
        [
            (b"retry-after", b"7"),
            (b"anthropic-ratelimit-requests-limit", b"50"),
            (b"anthropic-ratelimit-requests-remaining", b"0"),
        ],
    ),
    "error-529": (529, "overloaded_error", "Overloaded", []),
}


def _anthropic_blocks(answer: Any) -> list[dict[str, Any]]:
    if isinstance(answer, str):
        return [{"type": "text", "text": answer}]
    return [
        {"type": "tool_use", "id": f"toolu_{next(_ids):04d}", "name": name, "input": args}
        for name, args in answer
    ]


def _anthropic_usage(output: int) -> dict[str, int]:
    return {
        "input_tokens": INPUT_TOKENS - CACHED_TOKENS,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": CACHED_TOKENS,
        "output_tokens": output,
    }


def _event(name: str, data: Mapping[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _anthropic_events(model: str, answer: Any, *, fail: bool) -> list[bytes]:
    blocks = _anthropic_blocks(answer)
    message = {
        "id": f"msg_{next(_ids):04d}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**_anthropic_usage(1)},
    }
    out = [_event("message_start", {"type": "message_start", "message": message})]
    out.append(_event("ping", {"type": "ping"}))
    output = 0
    for index, block in enumerate(blocks):
        if block["type"] == "text":
            start = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": p} for p in _pieces(block["text"])]
        else:
            start = {**block, "input": {}}
            arguments = orjson.dumps(block["input"]).decode()
            deltas = [{"type": "input_json_delta", "partial_json": ""}]
            deltas += [
                {"type": "input_json_delta", "partial_json": p} for p in _pieces(arguments, 5)
            ]
        out.append(
            _event(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": start},
            )
        )
        for delta in deltas:
            output += 1
            data = {"type": "content_block_delta", "index": index, "delta": delta}
            out.append(_event("content_block_delta", data))
            if fail and output == 3:
                error = _anthropic_error("overloaded_error", "Overloaded")
                return [*out, _event("error", error)]
        out.append(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
    stop = "end_turn" if isinstance(answer, str) else "tool_use"
    out.append(
        _event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": output},
            },
        )
    )
    out.append(_event("message_stop", {"type": "message_stop"}))
    return out


async def _messages(body: dict[str, Any], send: Send) -> None:
    model = str(body.get("model", ""))
    if model in _ANTHROPIC_ERRORS:
        status, kind, text, headers = _ANTHROPIC_ERRORS[model]
        await _json(send, status, _anthropic_error(kind, text), headers)
        return
    answer = _read_anthropic(body)
    if body.get("stream"):
        await _sse(send, _anthropic_events(model, answer, fail=model == "stream-error"))
        return
    blocks = _anthropic_blocks(answer)
    output = sum(len(_pieces(b["text"])) for b in blocks if b["type"] == "text") or 9
    message = {
        "id": f"msg_{next(_ids):04d}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": blocks,
        "stop_reason": "end_turn" if isinstance(answer, str) else "tool_use",
        "stop_sequence": None,
        "usage": _anthropic_usage(output),
    }
    await _json(send, 200, message)


# --- OpenAI's wire format


def _openai_chunk(model: str, rid: str, delta: Any, finish: str | None = None) -> bytes:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    chunk = {"id": rid, "object": "chat.completion.chunk", "created": 1, "model": model}
    return b"data: " + orjson.dumps({**chunk, "choices": choices}) + b"\n\n"


def _openai_usage(output: int) -> dict[str, Any]:
    return {
        "prompt_tokens": INPUT_TOKENS,
        "completion_tokens": output,
        "total_tokens": INPUT_TOKENS + output,
        "prompt_tokens_details": {"cached_tokens": CACHED_TOKENS},
    }


def _openai_calls(answer: Any) -> list[dict[str, Any]]:
    return [
        {
            "id": f"call_{next(_ids):04d}",
            "type": "function",
            "function": {"name": name, "arguments": orjson.dumps(args).decode()},
        }
        for name, args in answer
    ]


def _openai_stream(model: str, answer: Any, include_usage: bool) -> list[bytes]:
    rid = f"chatcmpl-{next(_ids):04d}"
    out = [_openai_chunk(model, rid, {"role": "assistant", "content": ""})]
    output = 0
    if isinstance(answer, str):
        for piece in _pieces(answer):
            output += 1
            out.append(_openai_chunk(model, rid, {"content": piece}))
    else:
        for index, call in enumerate(_openai_calls(answer)):
            opening = {**call, "index": index, "function": {**call["function"], "arguments": ""}}
            out.append(_openai_chunk(model, rid, {"tool_calls": [opening]}))
            for piece in _pieces(call["function"]["arguments"], 5):
                output += 1
                args = {"index": index, "function": {"arguments": piece}}
                out.append(_openai_chunk(model, rid, {"tool_calls": [args]}))
    finish = "stop" if isinstance(answer, str) else "tool_calls"
    out.append(_openai_chunk(model, rid, {}, finish))
    if include_usage:
        usage = orjson.loads(_openai_chunk(model, rid, None)[6:])
        out.append(b"data: " + orjson.dumps({**usage, "usage": _openai_usage(output)}) + b"\n\n")
    return [*out, b"data: [DONE]\n\n"]


async def _chat(body: dict[str, Any], send: Send) -> None:
    model = str(body.get("model", ""))
    if model in _ANTHROPIC_ERRORS:  # the same errors, in OpenAI's shape (529 as 503)
        status, _kind, text, headers = _ANTHROPIC_ERRORS[model]
        error = {"message": text, "type": "error", "code": None, "param": None}
        await _json(send, 503 if status == 529 else status, {"error": error}, headers)
        return
    answer = _read_openai(body)
    if body.get("stream"):
        options = body.get("stream_options") or {}
        await _sse(send, _openai_stream(model, answer, options.get("include_usage") is True))
        return
    message: dict[str, Any] = {"role": "assistant", "content": None}
    if isinstance(answer, str):
        message["content"] = answer
    else:
        message["tool_calls"] = _openai_calls(answer)
    output = len(_pieces(answer)) if isinstance(answer, str) else 9
    completion = {
        "id": f"chatcmpl-{next(_ids):04d}",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "stop" if isinstance(answer, str) else "tool_calls",
            }
        ],
        "usage": _openai_usage(output),
    }
    await _json(send, 200, completion)


# --- ASGI plumbing


async def _json(
    send: Send, status: int, payload: Any, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    data = orjson.dumps(payload)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), *(headers or [])],
        }
    )
    await send({"type": "http.response.body", "body": data})


async def _sse(send: Send, events: list[bytes]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")],
        }
    )
    raw = b"".join(events)
    for start in range(0, len(raw), PIECE_BYTES):
        piece = raw[start : start + PIECE_BYTES]
        await send({"type": "http.response.body", "body": piece, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _read(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


_HANDLERS = {"/v1/messages": _messages, "/v1/chat/completions": _chat}


async def app(scope: Message, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    if scope["method"] == "GET" and path == "/_standin/requests":
        await _json(send, 200, list(RECENT))
        return
    handler = _HANDLERS.get(path)
    if scope["method"] != "POST" or handler is None:
        await _json(send, 404, _anthropic_error("not_found_error", f"no route {path}"))
        return
    raw = await _read(receive)
    body = orjson.loads(raw)
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    RECENT.append({"path": path, "headers": headers, "body": body})
    await handler(body, send)


def main(argv: list[str] | None = None) -> None:
    from serving import serve  # beside this script, which Python puts first on sys.path

    parser = argparse.ArgumentParser(description="Anthropic and OpenAI scripted stand-in")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9200)
    args = parser.parse_args(argv)
    serve(f"{__file__}:app", host=args.host, port=args.port)


if __name__ == "__main__":
    main()
