"""Cache keys: fd2._native.CacheKeyer against the best pure-Python way (orjson parse, drop the
excluded fields, orjson dump with sorted keys, hashlib SHA-256) for a small chat request and a
128 KB one. (The Python way is not even fully canonical: orjson sorts by UTF-8 bytes and keeps
float spellings; it is timed as the cheapest comparable alternative.)"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from fd2.cache_keys import CacheKeyer
from fd2_inference import InferenceModule

EXCLUDED = sorted(InferenceModule.cache_key_ignores)
KEYER = CacheKeyer(exclude=EXCLUDED, namespace="bench")


def _request(messages: int) -> bytes:
    body = {
        "model": "gpt-4o-mini",
        "stream": True,
        "user": "u-42",
        "temperature": 0.7,
        "messages": [
            {"role": "user" if i % 2 else "assistant", "content": f"Message {i}: " + "lorem " * 30}
            for i in range(messages)
        ],
    }
    return orjson.dumps(body)


BODIES = {"small-request": _request(2), "128KB-request": _request(630)}


def python_key(body: bytes) -> str:
    value = orjson.loads(body)
    for name in EXCLUDED:
        value.pop(name, None)
    canonical = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(b"bench\0" + canonical).hexdigest()


IMPLS: dict[str, Callable[[bytes], str]] = {"native": KEYER.key, "python-orjson": python_key}


@pytest.mark.parametrize("case", BODIES)
@pytest.mark.parametrize("impl", IMPLS)
def test_cache_key(benchmark: Any, case: str, impl: str) -> None:
    body = BODIES[case]
    assert case != "128KB-request" or 128 * 1024 <= len(body) < 140 * 1024
    key = IMPLS[impl](body)
    assert len(key) == 64
    assert key == IMPLS[impl](orjson.dumps(dict(reversed(orjson.loads(body).items()))))
    benchmark.group = f"cache key {case}"
    benchmark(IMPLS[impl], body)
