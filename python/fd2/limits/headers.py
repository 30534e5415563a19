"""OpenAI's x-ratelimit-* headers (and Retry-After) from a limiter decision."""

from __future__ import annotations

from collections.abc import Sequence

from fd2.limits.gcra import Decision
from fd2.limits.specs import LimitSpec


def duration(us: int) -> bytes:
    """A reset time as OpenAI writes it: `20ms`, `1s`, `1.5s`, `6m0s`."""
    if us <= 0:
        return b"0s"
    if us < 1_000_000:
        return b"%dms" % max(1, -(-us // 1000))
    seconds = us / 1_000_000
    if seconds < 60:
        return f"{seconds:.3f}".rstrip("0").rstrip(".").encode() + b"s"
    minutes, rest = divmod(int(-(-us // 1_000_000)), 60)
    return b"%dm%ds" % (minutes, rest)


def ratelimit_headers(specs: Sequence[LimitSpec], decision: Decision) -> list[tuple[bytes, bytes]]:
    """For requests and for tokens: the bucket closest to empty (the one a client must watch)."""
    headers: list[tuple[bytes, bytes]] = []
    for kind in ("requests", "tokens"):
        best = -1
        for index, spec in enumerate(specs):
            if spec.kind == kind and (
                best < 0
                or decision.remaining[index] * specs[best].limit
                < decision.remaining[best] * spec.limit
            ):
                best = index
        if best >= 0:
            suffix = kind.encode()
            headers += (
                (b"x-ratelimit-limit-" + suffix, b"%d" % specs[best].limit),
                (b"x-ratelimit-remaining-" + suffix, b"%d" % decision.remaining[best]),
                (b"x-ratelimit-reset-" + suffix, duration(decision.reset_us[best])),
            )
    return headers


def retry_after(decision: Decision) -> list[tuple[bytes, bytes]]:
    us = decision.retry_after_us
    return [
        (b"retry-after", b"%d" % max(1, -(-us // 1_000_000))),
        (b"retry-after-ms", b"%d" % max(1, -(-us // 1000))),
    ]
