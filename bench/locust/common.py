"""What the locust profiles share: where fd2's benchmark routes are, and answer checks.

The paths default to the routes `bench/locust/run.py` serves; point them at another deployment
with FD2_LOCUST_CHAT_PATH, FD2_LOCUST_STREAM_PATH, FD2_LOCUST_EMBED_PATH (and --host).
"""

from __future__ import annotations

import os
from typing import Any

import orjson

CHAT_PATH = os.environ.get("FD2_LOCUST_CHAT_PATH", "/bench/chat/v1/chat/completions")
STREAM_PATH = os.environ.get("FD2_LOCUST_STREAM_PATH", "/bench/stream/v1/chat/completions")
EMBED_PATH = os.environ.get("FD2_LOCUST_EMBED_PATH", "/bench/embed/v1/embeddings")
# The benchmark stand-in numbers its chunks ("t0 ", "t1 ", ...); a real model does not.
CHECK_ORDER = os.environ.get("FD2_LOCUST_CHECK_ORDER", "0") == "1"

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello."}]}
STREAM = {**CHAT, "stream": True}
EMBED = {"model": "text-embedding-3-small", "input": "hello"}


def chat_problem(status: int, body: bytes | None) -> str | None:
    """None for a valid chat completion, else what is wrong with the answer."""
    if status != 200:
        return f"HTTP {status}"
    try:
        answer: Any = orjson.loads(body or b"")
        content = answer["choices"][0]["message"]["content"]
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
        return "not a chat completion"
    return None if isinstance(content, str) else "no message content"


def error_problem(status: int, body: bytes | None, expected_status: int) -> str | None:
    """None for the OpenAI-shaped error the gateway must answer bad requests with."""
    if status != expected_status:
        return f"HTTP {status}, expected {expected_status}"
    try:
        error: Any = orjson.loads(body or b"")["error"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return "not an OpenAI-shaped error"
    if not isinstance(error, dict) or not {"message", "type", "param", "code"} <= error.keys():
        return "error object lacks message/type/param/code"
    return None
