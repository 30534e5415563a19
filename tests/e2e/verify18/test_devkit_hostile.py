"""rag_service and model_server under hostile or unusual input, through fd2 under Granian in
front of the devkit stand-ins (real processes, loopback). Each refusal is OpenAI-shaped with a
request id and never reaches the service when fd2 can tell it is wrong."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from ..conftest import Service
from ..devkit_services import refused, reset, seen
from .devkit_project import CLIENT_KEY, LIMITED_KEY, PROJECT, services_fixture, token

__all__ = ["services_fixture"]

Services = dict[str, Service]
KEY = {"authorization": f"Bearer {CLIENT_KEY}"}
# 300 levels: orjson reads it (its limit is 1024) and cannot write it again (255).
DEEP = b'{"a":' * 300 + b"1" + b"}" * 300


def post(services: Services, path: str, body: Any = None, **headers: str) -> httpx.Response:
    url = f"{services['fd2'].url}/{PROJECT}{path}"
    if isinstance(body, bytes):
        return httpx.post(url, content=body, headers=headers, timeout=20)
    return httpx.post(url, json=body, headers=headers, timeout=20)


def bearer(credential: str) -> dict[str, str]:
    return {"authorization": f"Bearer {credential}"}


def calls(standin: Service) -> list[dict[str, Any]]:
    return [item for item in seen(standin) if item["method"] == "POST"]


# --- rag_service: a caller limited to some configurations -----------------------------------


@pytest.mark.parametrize(
    "body",
    [
        # The devkit reads every configuration_names entry, and checks a token against the
        # first alone: the second must not slip through.
        {"query": "q", "configuration_names": ["kb", "other"]},
        # A non-empty configuration_names wins over configuration_name in the devkit.
        {"query": "q", "configuration_name": "kb", "configuration_names": ["other"]},
        {"query": "q", "configuration_name": "other"},
    ],
)
def test_a_token_limited_to_one_configuration_reads_no_other(
    services: Services, body: dict[str, Any]
) -> None:
    reset(services["rag"])
    limited = bearer(token(models=["kb"]))
    answer = post(services, "/kb/retrieve", body, **limited)
    refused(answer, 403)
    assert calls(services["rag"]) == []


def test_a_key_limited_to_one_configuration_reads_no_other(services: Services) -> None:
    reset(services["rag"])
    body = {"query": "q", "configuration_names": ["kb", "production-kb"]}
    refused(post(services, "/keyed-kb/retrieve", body, **bearer(LIMITED_KEY)), 403)
    assert calls(services["rag"]) == []
    ok = post(services, "/keyed-kb/retrieve", {"query": "q", "configuration_names": ["kb"]})
    refused(ok, 401)  # no credential at all
    allowed = post(
        services,
        "/keyed-kb/retrieve",
        {"query": "q", "configuration_names": ["kb"]},
        **bearer(LIMITED_KEY),
    )
    assert allowed.status_code == 200, allowed.text


def test_a_query_names_the_configuration_it_reads(services: Services) -> None:
    """QueryRequest has no configuration_names: the devkit reads configuration_name (its
    default "default" when absent), so fd2 always fills it and checks that one."""
    reset(services["rag"])
    limited = bearer(token(models=["kb"]))
    answer = post(services, "/kb/query", {"query": "q", "configuration_names": ["kb"]}, **limited)
    assert answer.status_code == 200, answer.text
    (call,) = calls(services["rag"])
    assert call["body"]["configuration_name"] == "kb"
    assert answer.json()["configuration_name"] == "kb"


def test_configuration_names_of_the_wrong_type(services: Services) -> None:
    for names in ("kb", [1], [""], {"kb": 1}):
        error = refused(
            post(
                services,
                "/kb/retrieve",
                {"query": "q", "configuration_names": names},
                **bearer(token()),
            ),
            400,
        )
        assert error["param"] == "configuration_names"


# --- bodies fd2 reads and cannot forward ----------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "credential"),
    [
        ("/kb/retrieve", b'{"query":"q","filter":' + DEEP + b"}", "jwt"),
        ("/kb/query", b'{"query":"q","config":' + DEEP + b"}", "jwt"),
        ("/kb/v1/chat/completions", b'{"messages":[],"x":' + DEEP + b"}", "jwt"),
        ("/open-models/embeddings", b'{"texts":["a"],"x":' + DEEP + b"}", "key"),
        ("/open-models/rerank", b'{"query":"a","texts":["a"],"x":' + DEEP + b"}", "key"),
    ],
)
def test_a_body_nested_too_deeply_to_forward_is_a_400(
    services: Services, path: str, body: bytes, credential: str
) -> None:
    headers = bearer(token()) if credential == "jwt" else KEY
    error = refused(post(services, path, body, **headers), 400)
    assert "nested too deeply" in error["message"]


def test_bodies_deeper_than_json_allows_and_not_json(services: Services) -> None:
    refused(post(services, "/open-models/embeddings", b"[" * 5000 + b"]" * 5000, **KEY), 400)
    refused(post(services, "/open-models/embeddings", b"{not json", **KEY), 400)
    refused(post(services, "/open-models/embeddings", b'"a string"', **KEY), 400)


# --- model_server ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/open-models/embeddings", {"texts": ["a", "b"], "model_name": "short"}),
        ("/open-models/rerank", {"query": "a", "texts": ["a", "b"], "model_name": "short"}),
        ("/open-models/classify", {"texts": ["a", "b"], "labels": ["x"], "model_name": "short"}),
        ("/open-models/v1/embeddings", {"input": ["a", "b"], "model": "short"}),
    ],
)
def test_one_batch_answered_with_the_wrong_count_is_a_502(
    services: Services, path: str, body: dict[str, Any]
) -> None:
    """Two texts fit one batch (batch_size 4): the answer is checked as a merged one is."""
    error = refused(post(services, path, body, **KEY), 502)
    assert "without 2" in error["message"]


@pytest.mark.parametrize(
    "body",
    [
        {"texts": "one text"},
        {"texts": [1, 2]},
        {"texts": ["a", None]},
        {"texts": ["a"], "model_name": 7},
        {"texts": ["a"], "model_name": ["x"]},
        {"texts": [["nested"]]},
        {},
    ],
)
def test_wrong_types_never_reach_the_server(services: Services, body: dict[str, Any]) -> None:
    reset(services["models"])
    error = refused(post(services, "/open-models/embeddings", body, **KEY), 400)
    assert error["param"] in ("texts", "model_name")
    assert calls(services["models"]) == []


def test_many_texts_go_in_bounded_batches_in_order(services: Services) -> None:
    reset(services["models"])
    texts = [f"text {index}" for index in range(203)]
    answer = post(services, "/open-models/embeddings", {"texts": texts}, **KEY)
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["embeddings"]) == 203
    sent = calls(services["models"])
    assert [len(call["body"]["texts"]) for call in sent].count(4) == 50
    assert sorted(text for call in sent for text in call["body"]["texts"]) == sorted(texts)
    peak = httpx.get(f"{services['models'].url}/_standin/peak", timeout=5).json()["peak"]
    assert 1 <= peak <= 4  # CONCURRENT_BATCHES


def test_a_batch_that_fails_fails_the_request_without_internals(services: Services) -> None:
    texts = [f"t{index}" for index in range(9)]
    error = refused(
        post(services, "/open-models/embeddings", {"texts": texts, "model_name": "boom"}, **KEY),
        502,
    )
    assert "CUDA" not in error["message"]


def test_unreachable_and_hanging_servers(services: Services) -> None:
    refused(post(services, "/down-models/embeddings", {"texts": ["a"]}, **KEY), 502)
    error = refused(
        post(services, "/open-models/embeddings", {"texts": ["a"], "model_name": "hang"}, **KEY),
        504,
    )
    assert "2 s" in error["message"]


# --- api_key_enabled ------------------------------------------------------------------------


def test_api_key_enabled_without_a_server_key_asks_callers_for_a_key(services: Services) -> None:
    reset(services["models"])
    refused(post(services, "/keyed-models/embeddings", {"texts": ["a"]}), 401)
    refused(post(services, "/keyed-models/embeddings", {"texts": ["a"]}, **bearer(token())), 401)
    refused(post(services, "/keyed-models/embeddings", {"texts": ["a"]}, **bearer("nope")), 401)
    answer = post(services, "/models/keyed-models/embeddings", {"texts": ["a"]}, **KEY)
    assert answer.status_code == 200, answer.text
    (call,) = calls(services["models"])
    assert "authorization" not in call["headers"]  # the caller's key is the gateway's alone


def test_api_key_enabled_with_a_jwt_module_takes_either(services: Services) -> None:
    reset(services["models"])
    jwt_token = token()
    by_key = post(services, "/either-models/embeddings", {"texts": ["a"]}, **KEY)
    assert by_key.status_code == 200, by_key.text
    by_token = post(services, "/either-models/embeddings", {"texts": ["b"]}, **bearer(jwt_token))
    assert by_token.status_code == 200, by_token.text
    refused(post(services, "/either-models/embeddings", {"texts": ["c"]}), 401)
    first, second = calls(services["models"])
    assert "authorization" not in first["headers"]
    assert second["headers"]["authorization"] == f"Bearer {jwt_token}"


# --- the devkit's streamed chat: failures arrive after its status line ----------------------


def stream_events(answer: httpx.Response) -> list[dict[str, Any]]:
    assert answer.status_code == 200, answer.text
    assert answer.headers.get("x-request-id")
    return [
        json.loads(line[len("data: ") :])
        for line in answer.text.splitlines()
        if line.startswith("data: ") and line != "data: [DONE]"
    ]


def test_a_streamed_refusal_keeps_the_devkits_words(services: Services) -> None:
    """fd2 accepts the token (the project's JWT module) and passes it on; the stand-in's
    `secure` configuration verifies it with another secret and refuses it inside the stream."""
    body = {"model": "secure", "stream": True, "messages": [{"role": "user", "content": "x"}]}
    answer = post(services, "/kb/v1/chat/completions", body, **bearer(token()))
    (event,) = stream_events(answer)
    error = event["error"]
    assert set(error) == {"message", "type", "code", "param"}
    assert error["message"].startswith("The RAG service refused the request: ")
    assert "Invalid token" in error["message"] and error["code"] == "upstream_unauthorized"


def test_a_streamed_failure_does_not_relay_the_devkits_exception_text(
    services: Services,
) -> None:
    body = {"model": "boom", "stream": True, "messages": [{"role": "user", "content": "x"}]}
    answer = post(services, "/kb/v1/chat/completions", body, **bearer(token()))
    (event,) = stream_events(answer)
    assert event["error"]["message"] == "The RAG service failed."
    assert "vector store" not in answer.text


def test_a_chat_is_charged_the_usage_the_devkit_reports(services: Services) -> None:
    """Each chat reserves its estimate (about 1030 tokens of 3000 a minute) and is settled at
    the 11 tokens the devkit reports: six in a row fit. Charged the estimate, the third would
    be refused. A query reports nothing and is charged its estimate: the budget then runs out."""
    body = {"model": "kb", "messages": [{"role": "user", "content": "hello"}]}
    for _ in range(6):
        answer = post(services, "/metered-kb/v1/chat/completions", body, **KEY)
        assert answer.status_code == 200, answer.text
    statuses = [
        post(services, "/metered-kb/query", {"query": "hello"}, **KEY).status_code for _ in range(3)
    ]
    assert statuses[:2] == [200, 200] and statuses[2] == 429
