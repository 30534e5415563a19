"""fd2._native.GcraPlan (a route's fixed buckets, planned once) against the Python reference:
`decide`/`adjusted` for the arithmetic, `ratelimit_headers`/`duration` for the headers."""

import random

from fd2._native import GcraBuckets
from fd2.limits.gcra import Decision, adjusted, decide
from fd2.limits.specs import LimitSpec
from fd2.pipeline.limits import duration, ratelimit_headers

SPECS = (
    LimitSpec("route:a", "requests", 3, 333_333),
    LimitSpec("project:b", "requests", 100, 600_000),
    LimitSpec("route:c", "tokens", 5_000, 12_000),
    LimitSpec("project:d", "tokens", 90_000, 666),
)


def test_a_plan_decides_stores_and_renders_as_the_reference_does() -> None:
    rng = random.Random(17)
    store = GcraBuckets()
    plan = store.plan(SPECS)
    reference: dict[str, int] = {}
    now = 10**12
    for _ in range(5_000):
        now += rng.choice((0, 1, 1_000, 50_000, 400_000, 3_000_000))
        if rng.random() < 0.15:  # settle tokens: give back or charge more
            delta = rng.randint(-3_000, 3_000)
            plan.settle(delta, now)
            for spec in SPECS:
                if spec.kind == "tokens" and delta:
                    reference[spec.key] = adjusted(reference.get(spec.key, now), spec, delta, now)
            continue
        tokens = rng.choice((0, 1, 40, 700, 4_000, 6_000))
        costs = [tokens if spec.kind == "tokens" else 1 for spec in SPECS]
        expected, new_tats = decide([reference.get(s.key, now) for s in SPECS], SPECS, costs, now)
        outcome = plan.admit(tokens, now)
        if expected.allowed:
            assert outcome == ratelimit_headers(SPECS, expected)
            reference.update({spec.key: tat for spec, tat in zip(SPECS, new_tats, strict=True)})
        else:
            assert outcome == (expected.retry_after_us, expected.remaining, expected.reset_us)


def test_a_plan_and_the_store_share_their_buckets() -> None:
    store = GcraBuckets()
    spec = LimitSpec("route:x", "requests", 2, 500_000)
    plan = store.plan((spec,))
    now = 10**12
    assert isinstance(plan.admit(0, now), list)
    allowed, _, remaining, _ = store.acquire((spec,), [1], now)
    assert (allowed, remaining) == (True, [0])
    refused = plan.admit(0, now)
    assert refused == (500_000, [0], [1_000_000])


def test_the_reset_header_is_written_as_python_writes_it() -> None:
    """A fresh bucket's reset after one unit is its interval: every interval below renders
    through the native code and must read as `duration` writes it."""
    rng = random.Random(5)
    intervals = [1, 999, 1_000, 1_001, 999_999, 1_000_000, 1_000_001, 1_062_500, 1_187_500]
    intervals += [59_999_999, 60_000_000, 60_000_001, 123_456_789, 3_600_000_000]
    intervals += [rng.randint(1, 10**10) for _ in range(300)]
    intervals += [rng.randint(1, 60_000) * 1_000 + 500 for _ in range(300)]  # near ties
    store = GcraBuckets()
    for index, interval in enumerate(intervals):
        plan = store.plan((LimitSpec(f"k{index}", "requests", 5, interval),))
        headers = plan.admit(0, 10**12)
        assert isinstance(headers, list)
        assert headers[2] == (b"x-ratelimit-reset-requests", duration(interval)), interval


def test_the_planned_headers_pick_the_bucket_closest_to_empty() -> None:
    store = GcraBuckets()
    roomy = LimitSpec("roomy", "requests", 1_000, 60_000)
    tight = LimitSpec("tight", "requests", 4, 250_000)
    plan = store.plan((roomy, tight))
    headers = plan.admit(0, 10**12)
    assert headers == ratelimit_headers(
        (roomy, tight), Decision(True, 0, [999, 3], [60_000, 250_000])
    )
    assert dict(headers)[b"x-ratelimit-limit-requests"] == b"4"  # type: ignore[arg-type]
    assert b"x-ratelimit-limit-tokens" not in dict(headers)  # type: ignore[arg-type]


def test_pruning_the_store_keeps_the_planned_buckets() -> None:
    """A full bucket is dropped from the store when it prunes, but not one a plan holds:
    the store would otherwise start a second state for the key the plan still counts on."""
    store = GcraBuckets()
    planned = LimitSpec("planned", "requests", 1, 1_000_000)
    plan = store.plan((planned,))
    now = 10**12
    assert isinstance(plan.admit(0, now), list)
    later = now + 2_000_000  # the planned bucket is full again by then
    for index in range(100_001):  # more than the store keeps before it prunes
        store.acquire((LimitSpec(f"c{index}", "requests", 10, 1),), [1], now)
    store.acquire((LimitSpec("last", "requests", 10, 1),), [1], later)
    assert len(store) < 100_000
    assert store.acquire((planned,), [1], later)[0]
    assert plan.admit(0, later) == (1_000_000, [0], [1_000_000])
