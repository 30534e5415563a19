"""The authenticate and authorise steps, each alone, with a real auth policy (API keys)."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from pipeline_support import Answering, FixedMeter, Recorder, make_request

from fd2.auth.api_keys import ApiKey, ApiKeyRecord, KeyHasher, KeyTable
from fd2.auth.errors import Forbidden
from fd2.auth.identity import Identity
from fd2.auth.policy import AuthPolicy
from fd2.pipeline.auth import Authenticate, Authorise
from fd2.serving.errors import Unauthorized

PEPPER = b"pepper"
KEY = "fd2_unit-test-key"


def policy(models: tuple[str, ...] | None = ("m",)) -> AuthPolicy:
    """A route with one API key, limited to `models` (None: any model)."""
    digest = hmac.new(PEPPER, KEY.encode(), hashlib.sha256).hexdigest()
    record = ApiKeyRecord(id="k", hash=digest, models=list(models) if models else None)
    key = ApiKey(record, "acme")
    identity = Identity("key:k", models=key.models)
    return AuthPolicy(
        mode="api_key",
        project="acme",
        module="chat",
        environment="development",
        keys=KeyTable([key]),
        hasher=KeyHasher(PEPPER),
        identities={key.digest: identity},
    )


def bearer(credential: str) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", b"Bearer " + credential.encode())]


async def test_authenticate_sets_the_identity_then_calls_the_rest() -> None:
    handler = Answering()
    request = make_request({}, headers=bearer(KEY))
    await Authenticate(policy())(request, Recorder(), handler)
    assert request.identity is not None and request.identity.credential == "key:k"
    assert handler.seen == [request]


@pytest.mark.parametrize("headers", [[], bearer(KEY + "x")])
async def test_authenticate_refuses_before_anything_runs(headers) -> None:
    handler = Answering()
    with pytest.raises(Unauthorized):
        await Authenticate(policy())(make_request({}, headers=headers), Recorder(), handler)
    assert not handler.seen


async def authorise(identity, meter, **request_options) -> Answering:
    handler = Answering()
    request = make_request({}, **request_options)
    request.identity = identity
    await Authorise(meter)(request, Recorder(), handler)
    return handler


async def test_an_open_route_has_no_one_to_authorise() -> None:
    assert (await authorise(None, None)).seen


async def test_endpoint_permissions() -> None:
    only_embeddings = Identity("jwt:a", endpoints=frozenset({"/v1/embeddings"}))
    with pytest.raises(Forbidden):
        await authorise(only_embeddings, FixedMeter())
    assert (await authorise(only_embeddings, FixedMeter(), path="/v1/embeddings")).seen


async def test_the_model_comes_from_the_meter() -> None:
    restricted = Identity("jwt:a", models=frozenset({"m"}))
    assert (await authorise(restricted, FixedMeter(model="m"))).seen
    for model in ("other", None):
        with pytest.raises(Forbidden):
            await authorise(restricted, FixedMeter(model=model))
    meter = FixedMeter(model="other")
    assert (await authorise(Identity("jwt:b"), meter)).seen  # no model restriction
    assert meter.estimates == 0  # authorisation never counts tokens


async def test_an_endpoint_without_a_meter_is_read_only_for_restricted_callers() -> None:
    restricted = Identity("jwt:a", models=frozenset({"m"}))
    assert (await authorise(restricted, None, method="GET", path="/v1/models")).seen
    with pytest.raises(Forbidden):
        await authorise(restricted, None, method="POST", path="/v1/anything")
    assert (await authorise(Identity("jwt:b"), None, method="POST")).seen


async def test_authenticating_authorises_a_caller_it_can_refuse() -> None:
    """Given the authorise step, authenticate runs it for a restricted caller (the policy's
    key may use model `m` only), so a request for another model is refused."""
    meter_other, meter_m = FixedMeter(model="other"), FixedMeter(model="m")
    handler = Answering()
    with pytest.raises(Forbidden):
        await Authenticate(policy(), Authorise(meter_other))(
            make_request({}, headers=bearer(KEY)), Recorder(), handler
        )
    assert not handler.seen
    request = make_request({}, headers=bearer(KEY))
    await Authenticate(policy(), Authorise(meter_m))(request, Recorder(), handler)
    assert handler.seen == [request]


async def test_a_job_s_caller_is_authorised_too() -> None:
    """A job run in process skips authenticating (its caller was authenticated when it was
    submitted) but not authorising."""
    from fd2.pipeline.auth import JOB_IDENTITY

    only_embeddings = Identity("key:j", endpoints=frozenset({"/v1/embeddings"}))
    handler = Answering()
    request = make_request({})
    request.scope[JOB_IDENTITY] = only_embeddings
    with pytest.raises(Forbidden):
        await Authenticate(policy(), Authorise(FixedMeter()))(request, Recorder(), handler)
    assert not handler.seen
    request = make_request({}, path="/v1/embeddings")
    request.scope[JOB_IDENTITY] = only_embeddings
    await Authenticate(policy(), Authorise(FixedMeter()))(request, Recorder(), handler)
    assert handler.seen == [request] and request.identity is only_embeddings


async def test_an_unrestricted_caller_skips_authorising() -> None:
    """Nothing to refuse: the authorise step is not entered."""

    class NeverEntered(Authorise):
        async def __call__(self, request, send, call_next) -> None:  # type: ignore[no-untyped-def]
            raise AssertionError("authorise ran for an unrestricted caller")

    open_policy = policy(models=None)
    handler = Answering()
    await Authenticate(open_policy, NeverEntered(FixedMeter()))(
        make_request({}, headers=bearer(KEY)), Recorder(), handler
    )
    assert len(handler.seen) == 1


async def test_a_key_checked_once_is_known_after_and_a_wrong_one_never_is() -> None:
    """The policy remembers the keys that matched (one entry per key of its table), never a
    key that did not: a flood of made-up keys cannot grow it."""
    checked = policy()
    for _ in range(3):
        request = make_request({}, headers=bearer(KEY))
        await Authenticate(checked)(request, Recorder(), Answering())
        assert request.identity is not None and request.identity.credential == "key:k"
    for index in range(50):
        with pytest.raises(Unauthorized):
            await Authenticate(checked)(
                make_request({}, headers=bearer(f"fd2_made-up-{index}")), Recorder(), Answering()
            )
    assert list(checked._known_keys) == [KEY]
