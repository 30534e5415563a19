"""Hostile clients, per provider (issue 12, verified): model names that would change the
provider's URL path, tool and `response_format` schemas that are huge or deeply nested, message
content of unexpected types, and the documented `unsupported_params` policies (refuse: 400
naming the parameter, nothing sent; drop: the request sent without it). fd2 under Granian, the
replay stand-in as the provider."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from e2e.conftest import Service

from .conftest import Replay
from .scenarios import MAX_TOKENS, MODEL, messages
from .verify12_support import (
    AZURE_BY_MODEL,
    DROP,
    PROVIDERS,
    TRANSLATED,
    assert_clean_error,
    chat_url,
    transcript,
    verify_fd2,  # noqa: F401  # the fixture
)

PLAIN = {"model": MODEL, "messages": messages(), "max_tokens": MAX_TOKENS}
HOSTILE_MODELS = [
    "..",
    ".",
    "../../v1/other",
    "a/../../b",
    "m?api-version=1&x=y",
    "m#frag",
    "%2e%2e",
    "m/../..?#",
    "m%2F..%2F",
    "m\\..\\x",
    "m\r\nx-injected: 1",
    " ",
]
PATH_SHAPES = {
    AZURE_BY_MODEL: re.compile(
        r"/openai/deployments/([^/?#]+)/chat/completions\?api-version=[^&#]+"
    ),
    "bedrock": re.compile(r"/model/([^/?#]+)/converse"),
    "gemini": re.compile(r"/v1beta/models/([^/?#]+):generateContent"),
}


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60.0) as client:
        yield client


def _result(replayer: Replay, expected: int) -> dict[str, Any]:
    deadline = time.monotonic() + 2.0
    result = replayer.result()
    while result["requests"] < expected and time.monotonic() < deadline:
        time.sleep(0.02)
        result = replayer.result()
    return result


def _sent_path(result: dict[str, Any]) -> str | None:
    for mismatch in result["mismatches"]:
        found = re.match(r"path: sent '(.*)', transcript", mismatch)
        if found:
            return found.group(1)
    return None


@pytest.mark.parametrize("module", sorted(PATH_SHAPES))
@pytest.mark.parametrize("model", HOSTILE_MODELS)
def test_a_model_name_cannot_change_the_provider_path(
    module: str,
    model: str,
    verify_fd2: Service,  # noqa: F811
    replayer: Replay,
    http: httpx.Client,
) -> None:
    """Gemini, Bedrock and Azure put the model (the deployment) in the URL path: a name made of
    path, query or fragment syntax is a 400 naming `model`, or one encoded path segment."""
    replayer.load(transcript(module, "plain"))
    response = http.post(chat_url(verify_fd2, module), json={**PLAIN, "model": model})
    if response.status_code == 400:
        error = assert_clean_error(response, 400)
        assert error.get("param") == "model", error
        assert _result(replayer, 0)["requests"] == 0
        return
    result = _result(replayer, 1)
    assert result["requests"] == 1
    sent = _sent_path(result)
    assert sent is not None, "the hostile model was sent as the transcript's own model"
    shape = PATH_SHAPES[module].fullmatch(sent)
    assert shape is not None, f"model {model!r} changed the path: {sent!r}"
    assert shape.group(1) not in (".", "..", "%2e%2e", "%2E%2E"), sent


class _Nested(dict[str, Any]):
    """A schema nested `depth` levels deep, written out as text (deeper than Python's JSON
    encoder recurses)."""

    def __init__(self, depth: int) -> None:
        super().__init__(type="object")
        self.depth = depth

    def text(self) -> str:
        opening = '{"type": "object", "required": ["a"], "properties": {"a": '
        return opening * self.depth + '{"type": "string"}' + "}}" * self.depth


def _nested_schema(depth: int) -> dict[str, Any]:
    return _Nested(depth)


def _tool(name: str, parameters: dict[str, Any]) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": parameters}}


HOSTILE_BODIES: dict[str, dict[str, Any]] = {
    "deep-tool-schema": {**PLAIN, "tools": [_tool("deep", _nested_schema(2000))]},
    "very-deep-tool-schema": {**PLAIN, "tools": [_tool("deep", _nested_schema(20000))]},
    "many-tools": {
        **PLAIN,
        "tools": [_tool(f"t{i}", _nested_schema(3)) for i in range(3000)],
    },
    "deep-response-schema": {
        **PLAIN,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "deep", "schema": _nested_schema(2000)},
        },
    },
    "self-ref-schema": {
        **PLAIN,
        "response_format": {
            "type": "json_schema",
            "json_schema": {
                "name": "loop",
                "schema": {
                    "$defs": {"n": {"type": "object", "properties": {"x": {"$ref": "#/$defs/n"}}}},
                    "$ref": "#/$defs/n",
                },
            },
        },
    },
    "ref-bomb-schema": {
        **PLAIN,
        "response_format": {
            "type": "json_schema",
            "json_schema": {
                "name": "bomb",
                "schema": {
                    "$defs": {
                        **{
                            f"d{i}": {
                                "type": "object",
                                "properties": {
                                    "a": {"$ref": f"#/$defs/d{i + 1}"},
                                    "b": {"$ref": f"#/$defs/d{i + 1}"},
                                },
                            }
                            for i in range(40)
                        },
                        "d40": {"type": "string"},
                    },
                    "$ref": "#/$defs/d0",
                },
            },
        },
    },
    "content-int": {**PLAIN, "messages": [{"role": "user", "content": 7}]},
    "content-object": {**PLAIN, "messages": [{"role": "user", "content": {"a": 1}}]},
    "content-list-of-int": {**PLAIN, "messages": [{"role": "user", "content": [7]}]},
    "text-part-int": {
        **PLAIN,
        "messages": [{"role": "user", "content": [{"type": "text", "text": 7}]}],
    },
    "image-part-string": {
        **PLAIN,
        "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": "x"}]}],
    },
    "image-url-int": {
        **PLAIN,
        "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": 7}}]}],
    },
    "bad-data-url": {
        **PLAIN,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@"}}
                ],
            }
        ],
    },
    "role-int": {**PLAIN, "messages": [{"role": 7, "content": "hi"}]},
    "role-unknown": {**PLAIN, "messages": [{"role": "wizard", "content": "hi"}]},
    "messages-string": {**PLAIN, "messages": "hi"},
    "messages-empty": {**PLAIN, "messages": []},
    "message-int": {**PLAIN, "messages": [7]},
    "tool-calls-string": {
        **PLAIN,
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "tool_calls": "x"},
        ],
    },
    "tool-call-function-int": {
        **PLAIN,
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": 7}]},
        ],
    },
    "tool-call-arguments-object": {
        **PLAIN,
        "messages": [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "c", "type": "function", "function": {"name": "f", "arguments": {}}}
                ],
            },
            {"role": "tool", "tool_call_id": "c", "content": "ok"},
        ],
    },
    "tool-result-unknown-id": {
        **PLAIN,
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "tool", "tool_call_id": 7, "content": [{"type": "text", "text": 1}]},
        ],
    },
    "tools-int": {**PLAIN, "tools": [7]},
    "tool-choice-int": {**PLAIN, "tools": [_tool("f", {"type": "object"})], "tool_choice": 7},
    "tool-choice-unknown-function": {
        **PLAIN,
        "tools": [_tool("f", {"type": "object"})],
        "tool_choice": {"type": "function", "function": {"name": 7}},
    },
    "stop-int": {**PLAIN, "stop": 7},
    "stop-list-of-int": {**PLAIN, "stop": [7, None]},
    "n-string": {**PLAIN, "n": "2"},
    "max-tokens-string": {**PLAIN, "max_tokens": "many"},
    "max-tokens-huge": {**PLAIN, "max_tokens": 10**30},
    "temperature-string": {**PLAIN, "temperature": "hot"},
    "stream-string": {**PLAIN, "stream": "yes"},
    "stream-options-int": {**PLAIN, "stream": True, "stream_options": 7},
    "response-format-string": {**PLAIN, "response_format": "json"},
    "response-format-schema-int": {
        **PLAIN,
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": 7}},
    },
    "model-int": {**PLAIN, "model": 7},
    "lone-surrogate": {**PLAIN, "messages": [{"role": "user", "content": "\ud800"}]},
}


@pytest.mark.parametrize("provider", [*PROVIDERS, AZURE_BY_MODEL])
@pytest.mark.parametrize("case", sorted(HOSTILE_BODIES))
def test_a_hostile_request_body_is_a_clean_answer(
    provider: str,
    case: str,
    verify_fd2: Service,  # noqa: F811
    replayer: Replay,
    http: httpx.Client,
) -> None:
    """Whatever the body, the answer is the provider's (200: the stand-in answers any request
    with its transcript) or a clean 4xx; never fd2's 500 or a dropped connection."""
    body = HOSTILE_BODIES[case]
    replayer.load(transcript(provider, "stream" if body.get("stream") is True else "plain"))
    response = http.post(
        chat_url(verify_fd2, provider),
        content=_dumps(body),
        headers={"content-type": "application/json"},
    )
    if response.status_code == 200:
        return
    assert 400 <= response.status_code < 500, (case, response.status_code, response.text[:300])
    assert_clean_error(response)


def _dumps(body: dict[str, Any]) -> bytes:
    # Python's json writes lone surrogates as a hostile client would; deep schemas are
    # spliced in as text.
    marks: dict[str, str] = {}

    def default(value: Any) -> Any:
        raise TypeError(value)

    def walk(value: Any) -> Any:
        if isinstance(value, _Nested):
            mark = f"@@nested{len(marks)}@@"
            marks[mark] = value.text()
            return mark
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    text = json.dumps(walk(body), default=default)
    for mark, nested in marks.items():
        text = text.replace(f'"{mark}"', nested)
    return text.encode()


REFUSED_BY_ALL = {"logit_bias": {"50256": -100}, "logprobs": True, "store": True}


@pytest.mark.parametrize("provider", [p for p in TRANSLATED if p != "azure"])
@pytest.mark.parametrize("param", sorted(REFUSED_BY_ALL))
def test_unsupported_params_refuse_and_drop(
    provider: str,
    param: str,
    verify_fd2: Service,  # noqa: F811
    replayer: Replay,
    http: httpx.Client,
) -> None:
    """refuse (the default): a 400 naming the parameter, no provider call. drop: the provider
    is sent exactly the request without it (the `plain` transcript's)."""
    body = {**PLAIN, param: REFUSED_BY_ALL[param]}
    replayer.load(None)
    refused = http.post(chat_url(verify_fd2, provider), json=body)
    error = assert_clean_error(refused, 400)
    assert error["param"] == param
    assert _result(replayer, 0)["requests"] == 0
    replayer.load(transcript(provider, "plain"))
    dropped = http.post(chat_url(verify_fd2, provider + DROP), json=body)
    assert dropped.status_code == 200, dropped.text[:300]
    result = _result(replayer, 1)
    assert result["requests"] == 1
    assert not result["mismatches"], result["mismatches"]
