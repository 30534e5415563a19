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


def policy() -> AuthPolicy:
    digest = hmac.new(PEPPER, KEY.encode(), hashlib.sha256).hexdigest()
    key = ApiKey(ApiKeyRecord(id="k", hash=digest, models=["m"]), "acme")
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
