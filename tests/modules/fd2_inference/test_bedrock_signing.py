"""SigV4 on Bedrock calls: the Authorization header's structure, the signature recomputed at a
fixed clock (by botocore's own add_auth, and from AWS's published algorithm with hashlib), the
session token, and no secret in reprs."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import re
import subprocess
import sys
from typing import Any
from urllib.parse import quote

import pytest

from fd2_inference.providers.base import ProviderCall, ProviderSettings
from fd2_inference.providers.bedrock import BedrockProvider
from fd2_inference.providers.bedrock_signing import SigV4Signer

ACCESS_KEY = "AKIDEXAMPLEBEDROCK01"
SECRET_KEY = "bedrock-test-secret/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "bedrock-test-session-token"
FIXED = datetime.datetime(2026, 11, 29, 19, 0, 5, tzinfo=datetime.UTC)
STAMP = "20261129T190005Z"
MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"

AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[a-z0-9-]+)"
    r"/bedrock/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<sig>[0-9a-f]{64})"
)


def provider(*, token: str | None = None, base_url: str = "") -> BedrockProvider:
    credentials = {"aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": SECRET_KEY}
    if token:
        credentials["aws_session_token"] = token
    settings = ProviderSettings(
        name="bedrock", base_url=base_url, region="eu-west-3", credentials=credentials
    )
    return BedrockProvider(settings, clock=lambda: FIXED)


def chat(p: BedrockProvider, *, stream: bool = False) -> ProviderCall:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5}
    return p.chat_call(body, stream=stream)


def test_authorization_has_the_scope_and_signed_headers() -> None:
    call = chat(provider(token=TOKEN))
    headers = dict(call.headers)
    assert headers["x-amz-date"] == STAMP
    assert headers["x-amz-security-token"] == TOKEN
    match = AUTHORIZATION.fullmatch(headers["authorization"])
    assert match is not None, headers["authorization"]
    assert match["key"] == ACCESS_KEY
    assert match["date"] == "20261129"
    assert match["region"] == "eu-west-3"
    assert match["signed"] == "content-type;host;x-amz-date;x-amz-security-token"
    assert call.path == "/model/anthropic.claude-3-5-sonnet-20240620-v1:0/converse"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _expected_signature(call: ProviderCall, host: str, region: str) -> str:
    """AWS's SigV4 steps, written from its documentation, over the request as sent."""
    headers = {name.lower(): value for name, value in call.headers}
    headers["host"] = host
    signed = sorted(name for name in headers if name not in ("authorization", "accept"))
    canonical = "\n".join(
        [
            call.method,
            quote(call.path, safe="/~"),  # non-S3 services encode the path as received
            "",
            *(f"{name}:{headers[name]}" for name in signed),
            "",
            ";".join(signed),
            hashlib.sha256(call.body or b"").hexdigest(),
        ]
    )
    scope = f"{STAMP[:8]}/{region}/bedrock/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", STAMP, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = _hmac(("AWS4" + SECRET_KEY).encode(), STAMP[:8])
    for part in (region, "bedrock", "aws4_request"):
        key = _hmac(key, part)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


@pytest.mark.parametrize("token", [None, TOKEN])
@pytest.mark.parametrize("stream", [False, True])
def test_signature_matches_the_published_algorithm(token: str | None, stream: bool) -> None:
    call = chat(provider(token=token), stream=stream)
    match = AUTHORIZATION.fullmatch(dict(call.headers)["authorization"])
    assert match is not None
    expected = _expected_signature(call, "bedrock-runtime.eu-west-3.amazonaws.com", "eu-west-3")
    assert match["sig"] == expected


def test_signature_matches_botocores_add_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    import botocore.auth  # type: ignore[import-untyped]
    from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
    from botocore.credentials import Credentials  # type: ignore[import-untyped]

    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: FIXED.replace(tzinfo=None))
    call = chat(provider(token=TOKEN, base_url="http://127.0.0.1:8123"))
    request = AWSRequest(
        method="POST",
        url="http://127.0.0.1:8123" + call.path,
        data=call.body,
        headers={"content-type": "application/json"},
    )
    auth = botocore.auth.SigV4Auth(
        Credentials(ACCESS_KEY, SECRET_KEY, TOKEN), "bedrock", "eu-west-3"
    )
    auth.add_auth(request)
    assert dict(call.headers)["authorization"] == request.headers["Authorization"]


def test_each_call_is_signed_at_its_own_time() -> None:
    times = iter([FIXED, FIXED + datetime.timedelta(seconds=1)])
    settings = ProviderSettings(
        name="bedrock",
        base_url="",
        region="us-east-1",
        credentials={"aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": SECRET_KEY},
    )
    p = BedrockProvider(settings, clock=lambda: next(times))
    first, second = (dict(chat(p).headers) for _ in range(2))
    assert first["x-amz-date"] != second["x-amz-date"]
    assert first["authorization"] != second["authorization"]


def test_model_arns_are_encoded_in_the_path() -> None:
    p = provider()
    arn = "arn:aws:bedrock:eu-west-3:123456789012:inference-profile/eu.anthropic.claude-v1:0"
    call = p.chat_call({"model": arn, "messages": [{"role": "user", "content": "x"}]}, stream=True)
    assert call.path == (
        "/model/arn:aws:bedrock:eu-west-3:123456789012:inference-profile%2Feu.anthropic."
        "claude-v1:0/converse-stream"
    )
    match = AUTHORIZATION.fullmatch(dict(call.headers)["authorization"])
    assert match is not None
    host = "bedrock-runtime.eu-west-3.amazonaws.com"
    assert match["sig"] == _expected_signature(call, host, "eu-west-3")


def test_no_secret_in_reprs() -> None:
    p = provider(token=TOKEN)
    signer: Any = p._signer
    for text in (repr(p), repr(signer), str(signer)):
        assert SECRET_KEY not in text
        assert TOKEN not in text
        assert ACCESS_KEY not in text
    assert isinstance(signer, SigV4Signer)


def test_botocore_is_imported_only_when_a_bedrock_provider_is_built() -> None:
    script = (
        "import sys\n"
        "import fd2_inference.module, fd2_inference.providers.registry\n"
        "import fd2_inference.providers.bedrock\n"
        "assert 'botocore' not in sys.modules, 'imported before a provider was built'\n"
        "from fd2_inference.providers.base import ProviderSettings\n"
        "from fd2_inference.providers.bedrock import BedrockProvider\n"
        "BedrockProvider(ProviderSettings(name='bedrock', base_url='', region='us-east-1',\n"
        "    credentials={'aws_access_key_id': 'a', 'aws_secret_access_key': 'b'}))\n"
        "assert 'botocore.auth' in sys.modules\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
