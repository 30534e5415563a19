"""An OpenAI-style upstream whose answer is the last user message, echoed: as one JSON answer,
or streamed in pieces of n characters when the model is `split-<n>` (so a test decides where
a value is cut between events). `GET /_scripted/last` returns the last request body it got,
`GET /_scripted/calls` how many chat requests it answered.

Run: python tests/e2e/privacy/scripted_upstream.py --port N
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import orjson

STATE: dict[str, Any] = {"last": None, "calls": 0}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    if scope["method"] == "GET" and path.startswith("/_scripted/"):
        value = STATE["last"] if path.endswith("/last") else STATE["calls"]
        await _whole(send, 200, orjson.dumps(value))
        return
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    payload = orjson.loads(b"".join(chunks))
    STATE["last"] = payload
    STATE["calls"] += 1
    text = next(
        (m["content"] for m in reversed(payload["messages"]) if m.get("role") == "user"), ""
    )
    model = payload.get("model", "")
    base = {"id": "chatcmpl-scripted", "created": int(time.time()), "model": model}
    prompt, completion = len(text.split()), len(text.split())
    usage = {"prompt_tokens": prompt, "completion_tokens": completion,
             "total_tokens": prompt + completion}  # fmt: skip
    if not payload.get("stream"):
        answer = {**base, "object": "chat.completion", "usage": usage, "choices": [
            {"index": 0, "finish_reason": "stop",
             "message": {"role": "assistant", "content": text}}]}  # fmt: skip
        await _whole(send, 200, orjson.dumps(answer))
        return
    size = int(model.split("-", 1)[1]) if model.startswith("split-") else 8
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/event-stream")]})  # fmt: skip
    base["object"] = "chat.completion.chunk"

    def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return b"data: " + orjson.dumps({**base, "choices": [choice]}) + b"\n\n"

    await send({"type": "http.response.body", "body": event({"role": "assistant", "content": ""}),
                "more_body": True})  # fmt: skip
    for start in range(0, len(text), size):
        piece = event({"content": text[start : start + size]})
        await send({"type": "http.response.body", "body": piece, "more_body": True})
    tail = event({}, "stop")
    if (payload.get("stream_options") or {}).get("include_usage"):
        tail += b"data: " + orjson.dumps({**base, "choices": [], "usage": usage}) + b"\n\n"
    tail += b"data: [DONE]\n\n"
    await send({"type": "http.response.body", "body": tail, "more_body": False})


async def _whole(send: Any, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json")]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    sys.path.insert(0, str(Path(__file__).parents[2] / "standins"))
    from serving import serve

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    serve(f"{__file__}:app", host="127.0.0.1", port=args.port, workers=1)


if __name__ == "__main__":
    main()
