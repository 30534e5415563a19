"""Arbitrary paths, headers and bodies: fd2 answers each with a clean OpenAI error or a success,
never a 500, never a stack trace, always with a request id."""

from __future__ import annotations

import json
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import Service
from .support import assert_openai_error, raw_request

_PATH_CHARS = string.ascii_letters + string.digits + "-_./%~!$&'()*+,;=:@"
SEGMENT = st.one_of(
    st.sampled_from(["acme", "chat", "embed", "legacy", "billing", "assistant", "v1", "..", ""]),
    st.text(alphabet=_PATH_CHARS, max_size=70),
)
ENDPOINTS = st.sampled_from(
    ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models", "/", "/v1", ""]
)
HEADER_VALUE = st.text(alphabet=string.printable.strip() + " ", max_size=80)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
BODIES = st.one_of(
    st.binary(max_size=300),
    JSON_VALUES.map(lambda value: json.dumps(value).encode()),
    st.fixed_dictionaries(
        {"model": st.sampled_from(["gpt-4o-mini", "error-400", "garbage", "", 3, None])},
        optional={
            "messages": JSON_VALUES,
            "stream": JSON_VALUES,
            "input": JSON_VALUES,
            "prompt": JSON_VALUES,
            "max_tokens": JSON_VALUES,
        },
    ).map(lambda value: json.dumps(value).encode()),
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
    project=SEGMENT,
    module=SEGMENT,
    endpoint=ENDPOINTS,
    environment=st.none() | st.sampled_from(["dev", "prod", "staging", "qa"]) | HEADER_VALUE,
    project_module=st.none() | st.sampled_from(["acme/chat", "acme/embed"]) | HEADER_VALUE,
    request_id=st.none() | HEADER_VALUE,
    body=BODIES,
)
def test_hostile_requests_get_clean_answers(
    fd2: Service,
    method: str,
    project: str,
    module: str,
    endpoint: str,
    environment: str | None,
    project_module: str | None,
    request_id: str | None,
    body: bytes,
) -> None:
    headers = [(b"content-type", b"application/json")]
    for name, value in (
        (b"x-environment", environment),
        (b"x-project-module", project_module),
        (b"x-request-id", request_id),
    ):
        if value is not None and value.strip():
            headers.append((name, value.strip().encode()))
    target = f"/{project}/{module}{endpoint}".encode()
    response = raw_request(fd2.port, method, target, headers, body)
    assert response.status != 500, response.body[:300]
    assert response.header("x-request-id"), "every answer carries a request id"
    if response.status >= 400:
        assert_openai_error(response.body, status=response.status)
