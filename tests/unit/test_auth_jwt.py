"""The JWT verifier: what it accepts, and every way a token is refused."""

import base64
import os
import time

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from fd2.auth.jwe import JweDecrypter, content_key
from fd2.auth.jwt_verifier import MAX_TOKEN_BYTES, JwtVerifier, TokenRejected

SECRET = b"a-shared-secret-long-enough-for-hs512-" * 2


def claims(**changes):
    now = int(time.time())
    base = {"sub": "alice", "iat": now, "nbf": now, "exp": now + 600, "type": "access"}
    base.update(changes)
    return {key: value for key, value in base.items() if value is not None}


def hs(payload, key=SECRET, algorithm="HS256", headers=None):
    return jwt.encode(payload, key, algorithm=algorithm, headers=headers)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def test_a_valid_hs256_token_gives_its_claims():
    verifier = JwtVerifier(algorithm="HS256", key=SECRET)
    assert (await verifier.verify(hs(claims(project="acme"))))["project"] == "acme"


@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
async def test_other_hmac_sizes(algorithm):
    verifier = JwtVerifier(algorithm=algorithm, key=SECRET)
    assert (await verifier.verify(hs(claims(), algorithm=algorithm)))["sub"] == "alice"


@pytest.mark.parametrize(
    "make_claims",
    [
        # Built when the test runs, not when it is collected: a long suite must not age them.
        pytest.param(lambda now: claims(exp=now - 60), id="expired"),
        pytest.param(lambda now: claims(nbf=now + 300), id="not-yet-valid"),
        pytest.param(lambda now: claims(iat=now + 300), id="issued-in-the-future"),
        pytest.param(lambda now: claims(exp=None), id="no-exp"),
        pytest.param(lambda now: claims(type="refresh"), id="refresh"),
    ],
)
async def test_time_and_type_claims_are_enforced(make_claims):
    token_claims = make_claims(int(time.time()))
    with pytest.raises(TokenRejected):
        await JwtVerifier(algorithm="HS256", key=SECRET).verify(hs(token_claims))


async def test_leeway_accepts_a_token_just_expired():
    token = hs(claims(exp=int(time.time()) - 3))
    assert await JwtVerifier(algorithm="HS256", key=SECRET, leeway_s=10).verify(token)
    with pytest.raises(TokenRejected):
        await JwtVerifier(algorithm="HS256", key=SECRET, leeway_s=0).verify(token)


async def test_issuer_and_audience_when_configured():
    verifier = JwtVerifier(algorithm="HS256", key=SECRET, issuer="jwt-svc", audience="fd2")
    assert await verifier.verify(hs(claims(iss="jwt-svc", aud="fd2")))
    for wrong in (claims(iss="other", aud="fd2"), claims(iss="jwt-svc", aud="other"), claims()):
        with pytest.raises(TokenRejected):
            await verifier.verify(hs(wrong))


async def test_alg_none_is_refused():
    header = b64(b'{"alg":"none","typ":"JWT"}')
    token = f"{header}.{b64(orjson.dumps(claims()))}."
    with pytest.raises(TokenRejected):
        await JwtVerifier(algorithm="HS256", key=SECRET).verify(token)


async def test_an_hs_token_signed_with_the_rsa_public_key_is_refused():
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = private.public_key()
    pem = public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    verifier = JwtVerifier(algorithm="RS256", key=public)
    assert await verifier.verify(jwt.encode(claims(), private, algorithm="RS256"))
    # the classic confusion: the public key, which anyone has, used as an HMAC secret
    header = b64(b'{"alg":"HS256","typ":"JWT"}')
    body = b64(orjson.dumps(claims()))
    import hashlib
    import hmac

    signature = hmac.new(pem, f"{header}.{body}".encode(), hashlib.sha256).digest()
    with pytest.raises(TokenRejected):
        await verifier.verify(f"{header}.{body}.{b64(signature)}")


async def test_es256_and_eddsa_with_public_keys():
    from cryptography.hazmat.primitives.asymmetric import ed25519

    ec_key = ec.generate_private_key(ec.SECP256R1())
    assert await JwtVerifier(algorithm="ES256", key=ec_key.public_key()).verify(
        jwt.encode(claims(), ec_key, algorithm="ES256")
    )
    ed_key = ed25519.Ed25519PrivateKey.generate()
    assert await JwtVerifier(algorithm="EdDSA", key=ed_key.public_key()).verify(
        jwt.encode(claims(), ed_key, algorithm="EdDSA")
    )


async def test_tampered_payload_and_signature_are_refused():
    verifier = JwtVerifier(algorithm="HS256", key=SECRET)
    header, body, signature = hs(claims(project="acme")).split(".")
    forged = b64(orjson.dumps(claims(project="other")))
    with pytest.raises(TokenRejected):
        await verifier.verify(f"{header}.{forged}.{signature}")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    with pytest.raises(TokenRejected):
        await verifier.verify(f"{header}.{body}.{flipped}")
    with pytest.raises(TokenRejected):
        await verifier.verify(hs(claims(), key=b"another-secret-long-enough-for-hs512-!" * 2))


async def test_an_oversized_token_is_refused_before_any_crypto():
    class Exploding:
        def __getattr__(self, name):
            raise AssertionError("the key was used")

    verifier = JwtVerifier(algorithm="HS256", key=Exploding())
    token = hs(claims(padding="x" * MAX_TOKEN_BYTES), key=SECRET)
    with pytest.raises(TokenRejected, match="oversized"):
        await verifier.verify(token)


@pytest.mark.parametrize("garbage", ["a.b.c", "....", "%%%.%%%.%%%", "e30.e30.e30", "W10.e30.x"])
async def test_garbage_is_refused(garbage):
    with pytest.raises(TokenRejected):
        await JwtVerifier(algorithm="HS256", key=SECRET).verify(garbage)


def jwe(key: bytes, inner: str, header=b'{"alg":"dir","enc":"A256GCM"}') -> str:
    protected = b64(header)
    iv = os.urandom(12)
    sealed = AESGCM(key).encrypt(iv, inner.encode(), protected.encode())
    return ".".join((protected, "", b64(iv), b64(sealed[:-16]), b64(sealed[-16:])))


async def test_jwe_wrapped_tokens_are_decrypted_when_enabled():
    key = os.urandom(32)
    verifier = JwtVerifier(algorithm="HS256", key=SECRET, jwe=JweDecrypter(key))
    assert (await verifier.verify(jwe(key, hs(claims(project="acme")))))["project"] == "acme"
    with pytest.raises(TokenRejected):  # wrong key: the GCM tag does not verify
        await verifier.verify(jwe(os.urandom(32), hs(claims())))
    with pytest.raises(TokenRejected):  # another algorithm pair
        await verifier.verify(jwe(key, hs(claims()), b'{"alg":"dir","enc":"A128GCM"}'))
    with pytest.raises(TokenRejected):  # a plain JWS where encryption is required
        await verifier.verify(hs(claims()))
    plain = JwtVerifier(algorithm="HS256", key=SECRET)
    with pytest.raises(TokenRejected):  # a JWE where none is configured
        await plain.verify(jwe(key, hs(claims())))


async def test_the_services_sealed_form_and_its_kid_header_are_accepted():
    # The JWT service seals `{"jwt": token}` and names the consumer key in `kid`.
    key = os.urandom(32)
    verifier = JwtVerifier(algorithm="HS256", key=SECRET, jwe=JweDecrypter(key))
    sealed = orjson.dumps({"jwt": hs(claims(project="acme"))}).decode()
    header = b'{"alg":"dir","enc":"A256GCM","kid":"acme-consumer"}'
    assert (await verifier.verify(jwe(key, sealed, header)))["project"] == "acme"


@pytest.mark.parametrize(
    ("inner", "header"),
    [
        pytest.param('{"jwt": 5}', b'{"alg":"dir","enc":"A256GCM"}', id="jwt-not-a-string"),
        pytest.param('{"token": "x"}', b'{"alg":"dir","enc":"A256GCM"}', id="no-jwt-member"),
        pytest.param("{not json", b'{"alg":"dir","enc":"A256GCM"}', id="broken-json"),
        pytest.param("a.b.c", b'{"alg":"dir","enc":"A256GCM","zip":"DEF"}', id="compressed"),
    ],
)
async def test_malformed_sealed_plaintexts_are_refused(inner, header):
    key = os.urandom(32)
    verifier = JwtVerifier(algorithm="HS256", key=SECRET, jwe=JweDecrypter(key))
    with pytest.raises(TokenRejected):
        await verifier.verify(jwe(key, inner, header))


def test_content_keys_in_every_spelling():
    key = bytes(range(32))
    assert content_key(key.hex()) == key
    assert content_key(base64.b64encode(key).decode()) == key
    assert content_key("k" * 32) == b"k" * 32
    with pytest.raises(Exception, match="32-byte"):
        content_key("short")
