"""JWKS keys from a real HTTP server on loopback: cached, refreshed for an unknown kid, with the
refreshes rate-limited."""

import json
import time

import aiohttp
import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from fd2.auth.jwks import JwksKeys
from fd2.auth.jwt_verifier import JwtVerifier, TokenRejected


def jwk(private, kid):
    entry = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    return {**entry, "kid": kid, "use": "sig", "alg": "RS256"}


@pytest.fixture
async def key_server():
    state = {"keys": [], "hits": 0}

    async def handler(request):
        state["hits"] += 1
        return web.json_response({"keys": state["keys"]})

    app = web.Application()
    app.router.add_get("/jwks.json", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/jwks.json", state
    finally:
        await runner.cleanup()


def token(private, kid):
    claims = {"sub": "a", "exp": int(time.time()) + 60}
    return jwt.encode(claims, private, algorithm="RS256", headers={"kid": kid})


async def test_keys_by_kid_and_rate_limited_refresh(key_server):
    url, state = key_server
    first = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    state["keys"] = [jwk(first, "k1")]
    async with aiohttp.ClientSession() as http:
        keys = JwksKeys(url, http, min_refresh_s=3600)
        verifier = JwtVerifier(algorithm="RS256", jwks=keys)
        assert (await verifier.verify(token(first, "k1")))["sub"] == "a"
        assert (await verifier.verify(token(first, "k1")))["sub"] == "a"
        assert state["hits"] == 1  # cached
        for _ in range(5):  # made-up kids: at most one refresh per min_refresh_s
            with pytest.raises(TokenRejected):
                await verifier.verify(token(first, "made-up"))
        assert state["hits"] == 1


async def test_a_rotated_key_is_fetched_when_its_kid_appears(key_server):
    url, state = key_server
    old = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    new = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    state["keys"] = [jwk(old, "old")]
    async with aiohttp.ClientSession() as http:
        verifier = JwtVerifier(algorithm="RS256", jwks=JwksKeys(url, http, min_refresh_s=0))
        assert await verifier.verify(token(old, "old"))
        state["keys"] = [jwk(old, "old"), jwk(new, "new")]
        assert await verifier.verify(token(new, "new"))
        assert state["hits"] == 2
        with pytest.raises(TokenRejected):  # signed by `new` but claiming to be `old`
            await verifier.verify(token(new, "old"))


async def test_an_unreachable_jwks_refuses_tokens():
    async with aiohttp.ClientSession() as http:
        keys = JwksKeys("http://127.0.0.1:9/jwks.json", http, timeout_s=0.5)
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        with pytest.raises(TokenRejected):
            await JwtVerifier(algorithm="RS256", jwks=keys).verify(token(private, "k"))
