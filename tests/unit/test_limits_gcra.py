"""GCRA decisions (pure) and the in-process limiter."""

import pytest

from fd2.limits.gcra import LocalLimiter, adjusted, decide
from fd2.limits.specs import parse_limits, specs_for

SECOND = 1_000_000


def test_a_bucket_admits_its_limit_at_once_then_refills_one_per_interval():
    spec = specs_for("k", {"requests_per_second": 10})[0]
    tat, now, admitted = 0, 1000 * SECOND, 0
    for _ in range(25):
        decision, new = decide([tat], [spec], [1], now)
        if decision.allowed:
            admitted += 1
            tat = new[0]
    assert admitted == 10
    decision, _ = decide([tat], [spec], [1], now)
    assert not decision.allowed
    assert decision.retry_after_us == spec.interval_us  # one refill away
    later, _ = decide([tat], [spec], [1], now + spec.interval_us)
    assert later.allowed


def test_a_refused_check_charges_no_bucket():
    loose, tight = (
        specs_for("a", {"requests_per_minute": 100})[0],
        specs_for("b", {"requests_per_second": 1})[0],
    )
    limiter = LocalLimiter()
    assert limiter.acquire_now((loose, tight), [1, 1]).allowed
    refused = limiter.acquire_now((loose, tight), [1, 1])
    assert not refused.allowed
    # the loose bucket was not charged for the refused request: still 99 left
    assert refused.remaining[0] == 99
    assert limiter.acquire_now((loose,), [1]).remaining == [98]


def test_token_costs_and_remaining_count_units():
    spec = specs_for("t", {"tokens_per_minute": 1000})[0]
    limiter = LocalLimiter()
    first = limiter.acquire_now((spec,), [300])
    assert first.allowed
    assert first.remaining == [700]
    assert not limiter.acquire_now((spec,), [701]).allowed
    assert limiter.acquire_now((spec,), [700]).allowed


def test_adjust_gives_back_and_charges_more():
    spec = specs_for("t", {"tokens_per_minute": 1000})[0]
    limiter = LocalLimiter()
    limiter.acquire_now((spec,), [1000])
    limiter.adjust_now((spec,), [-400])  # the call used 600 of the 1000 reserved
    assert limiter.acquire_now((spec,), [400]).allowed
    assert not limiter.acquire_now((spec,), [5]).allowed
    now = 50 * SECOND
    assert adjusted(now - 5, spec, -10, now) == now  # a full bucket cannot get fuller
    assert adjusted(now, spec, 3, now) == now + 3 * spec.interval_us


def test_parse_limits_refuses_nonsense():
    assert parse_limits({"requests_per_second": "20", "other": 1}, "x") == {
        "requests_per_second": 20
    }
    too_many = {"requests_per_minute": 10**12 + 1}  # beyond what the buckets count
    for bad in ({"requests_per_second": 0}, {"tokens_per_minute": "many"}, [1], too_many):
        try:
            parse_limits(bad, "x")
        except Exception as exc:
            assert type(exc).__name__ == "ConfigError"
        else:
            raise AssertionError(f"{bad} was accepted")


def test_the_native_buckets_decide_as_the_python_reference_does() -> None:
    """fd2._native.GcraBuckets (what LocalLimiter runs) against `decide` and `adjusted` (what
    the Redis script mirrors): the same decisions, counts and TATs over random traffic."""
    import random

    from fd2._native import GcraBuckets
    from fd2.limits.specs import LimitSpec

    rng = random.Random(16)
    specs = (
        LimitSpec("a", "requests", 3, 333_333),
        LimitSpec("b", "requests", 100, 600_000),
        LimitSpec("c", "tokens", 5_000, 12_000),
    )
    native = GcraBuckets()
    reference: dict[str, int] = {}
    now = 10**12
    for _ in range(5_000):
        now += rng.choice((0, 1, 1_000, 50_000, 400_000, 3_000_000))
        chosen = tuple(spec for spec in specs if rng.random() < 0.7) or specs[:1]
        costs = [rng.choice((1, 1, 1, 2, 700, 4_000)) for _ in chosen]
        if rng.random() < 0.1:  # settle tokens: give back or charge more
            deltas = [rng.randint(-3_000, 3_000) for _ in chosen]
            native.adjust(chosen, deltas, now)
            for spec, delta in zip(chosen, deltas, strict=True):
                if delta:
                    reference[spec.key] = adjusted(reference.get(spec.key, now), spec, delta, now)
            continue
        expected, new_tats = decide([reference.get(s.key, now) for s in chosen], chosen, costs, now)
        allowed, retry, remaining, reset = native.acquire(chosen, costs, now)
        assert (allowed, retry, remaining, reset) == (
            expected.allowed,
            expected.retry_after_us,
            expected.remaining,
            expected.reset_us,
        )
        if expected.allowed:
            for spec, tat in zip(chosen, new_tats, strict=True):
                reference[spec.key] = tat
    assert len(native) == len(reference)


def test_the_native_buckets_refuse_a_cost_list_of_another_length() -> None:
    from fd2._native import GcraBuckets
    from fd2.limits.specs import LimitSpec

    with pytest.raises(ValueError, match="one cost per spec"):
        GcraBuckets().acquire((LimitSpec("a", "requests", 3, 1),), [1, 1], 0)


def test_a_window_too_large_to_count_is_the_route_s_settings_error() -> None:
    from fd2.limits.plan import LimitPlan
    from fd2.limits.specs import LimitSpec
    from fd2.serving.errors import ConfigError

    huge = LimitSpec("route:x:apisix:0:limit-count", "requests", 5, 10**30)
    with pytest.raises(ConfigError):
        LimitPlan(LocalLimiter(), (huge,))
