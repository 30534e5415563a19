"""API keys (hashing, lookup, constant-time compare), credential headers, claim enforcement."""

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fd2.auth import api_keys
from fd2.auth.api_keys import ApiKey, ApiKeyRecord, KeyHasher, KeyTable, new_key
from fd2.auth.credentials import looks_like_jwt, presented_credential
from fd2.auth.identity import identity_from_claims
from fd2.serving.errors import Unauthorized


def test_hashes_are_hmac_sha256_with_the_pepper():
    key = new_key()
    assert key.startswith("fd2_") and len(key) > 40
    expected = hmac.new(b"pepper", key.encode(), hashlib.sha256).digest()
    assert KeyHasher(b"pepper").digest(key) == expected
    assert KeyHasher(b"other").digest(key) != expected


def test_the_final_comparison_is_constant_time(monkeypatch):
    hasher = KeyHasher(b"p")
    key = ApiKey(ApiKeyRecord(id="k", hash=hasher.digest("secret").hex()), "acme")
    table = KeyTable([key])
    compared = []
    real = hmac.compare_digest

    def spy(a, b):
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(api_keys.hmac, "compare_digest", spy)
    assert table.find(hasher.digest("secret")) is key
    assert compared == [(key.digest, hasher.digest("secret"))]
    assert table.find(hasher.digest("secreT")) is None


def test_key_scope():
    record = ApiKeyRecord(id="k", hash="0" * 64, modules=["chat"], environments=["prod"])
    key = ApiKey(record, "acme")
    assert key.allows_route("acme", "chat", "production")
    assert not key.allows_route("acme", "embed", "production")
    assert not key.allows_route("acme", "chat", "development")
    assert not key.allows_route("billing", "chat", "production")


def scope(*headers):
    return {"headers": list(headers)}


def test_credentials_from_each_header():
    assert presented_credential(scope((b"authorization", b"Bearer abc"))) == "abc"
    assert presented_credential(scope((b"authorization", b"bearer  abc"))) == "abc"
    assert presented_credential(scope((b"api-key", b"abc"))) == "abc"
    assert presented_credential(scope((b"x-api-key", b"abc"))) == "abc"
    assert presented_credential(scope((b"x-api-key", b"abc"), (b"api-key", b"abc"))) == "abc"
    assert presented_credential(scope((b"content-type", b"x"))) is None


@pytest.mark.parametrize(
    "headers",
    [
        [(b"authorization", b"Basic abc")],
        [(b"authorization", b"Bearer a b")],
        [(b"authorization", b"Bearer a\r\nb")],
        [(b"api-key", b"caf\xc3\xa9")],
        [(b"api-key", b"x" * 20000)],
        [(b"api-key", b"")],
        [(b"api-key", b"one"), (b"x-api-key", b"two")],
    ],
)
def test_malformed_credentials_are_401(headers):
    with pytest.raises(Unauthorized):
        presented_credential(scope(*headers))


def test_jwt_shapes():
    assert looks_like_jwt("a.b.c") and looks_like_jwt("a.b.c.d.e")
    assert not looks_like_jwt("fd2_abc") and not looks_like_jwt("a.b")


def claims(**changes):
    base = {"sub": "alice", "project": "acme", "environment": "dev", "models": ["m1"]}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def identity(window: str = "hour", **changes):
    return identity_from_claims(
        claims(**changes),
        project="acme",
        environment="development",
        require_route_claims=True,
        rate_limit_window=window,
    )


def test_claims_that_fit_the_route():
    found = identity(rate_limit=60, endpoint_permissions=["chat/completions"])
    assert found is not None
    assert found.models == frozenset({"m1"})
    assert found.allows_endpoint("/v1/chat/completions")
    assert not found.allows_endpoint("/v1/embeddings")
    assert [(s.kind, s.limit) for s in found.limit_specs] == [("requests", 60)]
    assert identity(endpoint_permissions={"/v1/embeddings": True}).allows_endpoint("/v1/embeddings")


@pytest.mark.parametrize(
    "changes",
    [
        {"project": "billing"},
        {"environment": "production"},
        {"environment": "dev\nx"},
        {"project": None},
        {"models": "m1"},
        {"endpoint_permissions": 5},
        {"rate_limit": 0},
        {"rate_limit": -5},
        {"rate_limit": 1.5},
        {"rate_limit": "100"},
        {"rate_limit": True},
    ],
)
def test_claims_that_do_not_fit(changes):
    assert identity(**changes) is None


def test_a_null_rate_limit_grants_nothing():
    found = identity_from_claims(
        {**claims(), "rate_limit": None},
        project="acme",
        environment="development",
        require_route_claims=True,
    )
    assert found is None


@pytest.mark.parametrize(
    ("window", "interval_us"),
    [("second", 10_000), ("minute", 600_000), ("hour", 36_000_000)],
)
def test_the_rate_limit_claim_is_read_in_the_modules_window(window, interval_us):
    found = identity(window, rate_limit=100)
    assert found is not None
    [spec] = found.limit_specs
    assert (spec.kind, spec.limit, spec.interval_us) == ("requests", 100, interval_us)
    assert spec.key.endswith(f":requests_per_{window}")


def test_the_rate_limit_claim_defaults_to_per_hour_and_takes_integral_floats():
    found = identity_from_claims(
        claims(rate_limit=120.0),
        project="acme",
        environment="development",
        require_route_claims=True,
    )
    assert found is not None
    assert [(s.limit, s.interval_us) for s in found.limit_specs] == [(120, 30_000_000)]
    assert identity().limit_specs == ()  # no claim, no credential bucket


def test_an_empty_models_claim_allows_no_model():
    found = identity(models=[])
    assert found is not None and found.models == frozenset()


@given(
    st.lists(
        st.tuples(
            st.sampled_from([b"authorization", b"api-key", b"x-api-key", b"other"]),
            st.binary(max_size=64),
        ),
        max_size=4,
    )
)
def test_any_header_bytes_give_a_clean_credential_or_a_401(headers):
    try:
        found = presented_credential(scope(*headers))
    except Unauthorized:
        return
    if found is not None:
        assert found.isascii() and found.isprintable() and " " not in found


def test_a_rate_limit_claim_beyond_counting_is_the_largest_limit() -> None:
    """A token's `rate_limit` of 10^30 is no limit in practice: counted as the largest one the
    buckets hold rather than breaking every request of its caller."""
    from fd2.limits.gcra import LocalLimiter
    from fd2.limits.plan import LimitPlan
    from fd2.limits.specs import MAX_LIMIT

    identity = identity_from_claims(
        {"sub": "a", "project": "acme", "environment": "development", "rate_limit": 10**30},
        project="acme",
        environment="development",
        require_route_claims=True,
    )
    assert identity is not None
    assert [spec.limit for spec in identity.limit_specs] == [MAX_LIMIT]
    assert LimitPlan(LocalLimiter(), ()).planned_with(identity) is not None
