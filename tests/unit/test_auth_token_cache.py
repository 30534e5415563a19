"""Verified tokens are reused until they expire, never after."""

import time

from fd2.auth import token_cache
from fd2.auth.identity import Identity
from fd2.auth.token_cache import VerifiedTokens


def test_a_token_is_served_until_its_exp(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(token_cache.time, "time", lambda: now[0])
    cache = VerifiedTokens()
    who = Identity("jwt:alice")
    cache.put("t", who, {"exp": 1010, "nbf": 990})
    assert cache.get("t") is who
    assert cache.get("t2") is None
    now[0] = 1010.0
    assert cache.get("t") is None


def test_tokens_not_valid_right_now_are_not_kept():
    cache = VerifiedTokens()
    now = int(time.time())
    cache.put("future", Identity("a"), {"exp": now + 60, "nbf": now + 5})
    cache.put("expired", Identity("a"), {"exp": now - 1})
    cache.put("no-exp", Identity("a"), {})
    assert cache.get("future") is None
    assert cache.get("expired") is None
    assert cache.get("no-exp") is None
