"""rag_service end to end: fd2 under Granian in front of the RAG devkit stand-in."""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest

from .conftest import Service
from .devkit_services import devkit_fixture, refused, reset, seen, token  # noqa: F401

Devkit = dict[str, Service]
QUERY = {"query": "What is machine learning?"}


def post(devkit: Devkit, path: str, body: object, **headers: str) -> httpx.Response:
    return httpx.post(f"{devkit['fd2'].url}/kb{path}", json=body, headers=headers, timeout=20)


def last(devkit: Devkit) -> dict[str, object]:
    return seen(devkit["rag"])[-1]


def test_query_fills_every_default_and_answers_in_the_devkit_shape(devkit: Devkit) -> None:
    answer = post(devkit, "/knowledge-base/query", QUERY, authorization="Bearer fd2-key-x")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {
        "query",
        "answer",
        "sources",
        "processing_time",
        "configuration_name",
        "query_expansion_metadata",
    }
    assert body["configuration_name"] == "kb"
    assert len(body["sources"]) == 3
    received = last(devkit)
    assert received["path"] == "/api/v1/query"
    assert received["body"] == {
        "query": QUERY["query"],
        "configuration_name": "kb",
        "k": 3,
        "similarity_threshold": 0.2,
        "filter_after_reranking": True,
        "query_expansion": {
            "enabled": True,
            "strategy": "multi_query",
            "llm_config_name": "llama3-8b",
            "num_queries": 2,
        },
        "filter": {"status": "published"},
    }
    headers = received["headers"]
    assert isinstance(headers, dict)
    # jwt_auth_enabled is off: nothing the caller sent as a credential goes to the service.
    assert "authorization" not in headers
    assert headers["x-request-id"] == answer.headers["x-request-id"]


def test_the_callers_values_win_and_the_module_filter_still_applies(devkit: Devkit) -> None:
    body = {
        **QUERY,
        "k": 7,
        "similarity_threshold": 0.5,
        "configuration_name": "production-kb",
        "filter": {"team": "ml"},
        "query_expansion": {"enabled": False, "llm_config_name": "other"},
    }
    answer = post(devkit, "/knowledge-base/query", body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["configuration_name"] == "production-kb"
    sent = last(devkit)["body"]
    assert isinstance(sent, dict)
    assert sent["k"] == 7 and sent["similarity_threshold"] == 0.5
    assert sent["query_expansion"] == {"enabled": False, "llm_config_name": "other"}
    assert sent["filter"] == {"$and": [{"status": "published"}, {"team": "ml"}]}


@pytest.mark.parametrize("path", ["/knowledge-base/retrieve", "/knowledge-base/api/v1/retrieve"])
def test_retrieve_adds_reranking_and_answers_documents(devkit: Devkit, path: str) -> None:
    answer = post(devkit, path, QUERY)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["total_found"] == 3 and body["configuration_name"] == "kb"
    sent = last(devkit)
    assert sent["path"] == "/api/v1/retrieve"
    assert isinstance(sent["body"], dict) and sent["body"]["use_reranking"] is True


def test_health_of_the_service(devkit: Devkit) -> None:
    answer = httpx.get(f"{devkit['fd2'].url}/kb/knowledge-base/health", timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "healthy"


def test_chat_completions_through_the_openai_sdk_plain_and_streamed(devkit: Devkit) -> None:
    with openai.OpenAI(
        base_url=f"{devkit['fd2'].url}/kb/knowledge-base/v1", api_key="unused", max_retries=0
    ) as sdk:
        reply = sdk.chat.completions.create(
            model="kb", messages=[{"role": "user", "content": "what is rag"}]
        )
        assert reply.choices[0].message.content == "Answer to 'what is rag' from kb"
        stream = sdk.chat.completions.create(
            model="kb", messages=[{"role": "user", "content": "what is rag"}], stream=True
        )
        parts = [chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices]
        assert len(parts) > 3
        assert "".join(parts) == "Answer to 'what is rag' from kb"
        assert [model.id for model in sdk.models.list()][:1] == ["default"]


def test_chat_model_defaults_to_the_configuration(devkit: Devkit) -> None:
    answer = post(
        devkit,
        "/knowledge-base/v1/chat/completions",
        {"messages": [{"role": "user", "content": "x"}]},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["model"] == "kb"


def test_the_callers_jwt_goes_to_the_service_when_jwt_auth_is_enabled(devkit: Devkit) -> None:
    grant = token(metadata_filter={"department": "hr"})
    answer = post(devkit, "/secure-kb/retrieve", QUERY, authorization=f"Bearer {grant}")
    assert answer.status_code == 200, answer.text
    received = last(devkit)
    headers = received["headers"]
    assert isinstance(headers, dict) and headers["authorization"] == f"Bearer {grant}"
    # The devkit read the token's metadata_filter claim: the caller's identity arrived.
    assert received["applied_filter"] == {"department": "hr"}


def test_jwt_protected_module_refuses_without_a_token(devkit: Devkit) -> None:
    before = len(seen(devkit["rag"]))
    refused(post(devkit, "/secure-kb/query", QUERY), 401)
    refused(post(devkit, "/secure-kb/query", QUERY, authorization="Bearer not-a-token"), 401)
    assert len(seen(devkit["rag"])) == before


def test_streamed_chat_carries_the_jwt(devkit: Devkit) -> None:
    grant = token()
    with openai.OpenAI(
        base_url=f"{devkit['fd2'].url}/kb/secure-kb/v1", api_key=grant, max_retries=0
    ) as sdk:
        stream = sdk.chat.completions.create(
            model="secure", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "Answer to 'hi' from secure"
    headers = last(devkit)["headers"]
    assert isinstance(headers, dict) and headers["authorization"] == f"Bearer {grant}"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "query"),
        ({"query": ""}, "query"),
        ({"query": 5}, "query"),
        ({"query": "x", "filter": "status=published"}, "filter"),
    ],
)
def test_bad_bodies_are_refused_by_fd2(devkit: Devkit, body: object, param: str) -> None:
    error = refused(post(devkit, "/knowledge-base/query", body), 400)
    assert error["param"] == param


def test_bad_json_and_wrong_shapes(devkit: Devkit) -> None:
    url = f"{devkit['fd2'].url}/kb/knowledge-base/query"
    refused(httpx.post(url, content=b"{not json", timeout=10), 400)
    refused(httpx.post(url, json=["a list"], timeout=10), 400)
    refused(httpx.get(url, timeout=10), 405)
    refused(httpx.post(f"{devkit['fd2'].url}/kb/knowledge-base/nothing", json=QUERY), 404)


def test_the_devkits_validation_error_becomes_a_400_naming_the_field(devkit: Devkit) -> None:
    error = refused(post(devkit, "/knowledge-base/query", {**QUERY, "k": 500}), 400)
    assert error["param"] == "k"
    assert "less than or equal to 20" in error["message"]


def test_an_unknown_configuration(devkit: Devkit) -> None:
    # The devkit looks up the first configuration's security settings before it checks that the
    # configurations exist: an unknown first one is its 500, a later one its 404.
    names = {"configuration_names": ["kb", "nope"]}
    error = refused(post(devkit, "/knowledge-base/retrieve", {**QUERY, **names}), 404)
    assert "Configuration 'nope' not found" in error["message"]
    error = refused(
        post(devkit, "/knowledge-base/retrieve", {**QUERY, "configuration_name": "nope"}), 502
    )
    assert error["message"] == "The RAG service failed (HTTP 500)."
    # The devkit's /query answers every failure with a 500: fd2 says the service failed.
    error = refused(
        post(devkit, "/knowledge-base/query", {**QUERY, "configuration_name": "nope"}), 502
    )
    assert error["message"] == "The RAG service failed (HTTP 500)."


def test_a_failing_service_is_a_502_without_its_internals(devkit: Devkit) -> None:
    error = refused(
        post(devkit, "/knowledge-base/retrieve", {**QUERY, "configuration_name": "boom"}), 502
    )
    assert "exploded" not in error["message"]
    error = refused(
        post(devkit, "/knowledge-base/retrieve", {**QUERY, "configuration_name": "garbage"}), 502
    )
    assert "not JSON" in error["message"]


def test_a_hanging_service_times_out_with_a_504(devkit: Devkit) -> None:
    started = time.monotonic()
    error = refused(post(devkit, "/hung/query", QUERY), 504)
    assert time.monotonic() - started < 5
    assert "1 s" in error["message"]


def test_a_service_that_is_down_is_a_502_after_bounded_retries(devkit: Devkit) -> None:
    started = time.monotonic()
    error = refused(post(devkit, "/down/query", QUERY), 502)
    assert "could not be reached" in error["message"]
    assert time.monotonic() - started < 5


def test_retrieve_is_retried_past_a_starting_service(devkit: Devkit) -> None:
    reset(devkit["rag"])
    answer = post(devkit, "/knowledge-base/retrieve", {**QUERY, "configuration_name": "flaky"})
    assert answer.status_code == 200, answer.text
    assert len(seen(devkit["rag"])) == 3  # two 503s, then the answer (max_retries 2)


def test_query_is_not_retried_after_the_service_answered(devkit: Devkit) -> None:
    reset(devkit["rag"])
    error = refused(
        post(devkit, "/knowledge-base/query", {**QUERY, "configuration_name": "flaky"}), 502
    )
    assert "HTTP 500" in error["message"]
    assert len(seen(devkit["rag"])) == 1


def test_a_streamed_chat_refused_by_the_service_keeps_its_status_and_words(
    devkit: Devkit,
) -> None:
    body = {"model": "nope", "stream": True, "messages": [{"role": "user", "content": "x"}]}
    error = refused(post(devkit, "/knowledge-base/v1/chat/completions", body), 404)
    assert "Model (configuration) 'nope' not found" in error["message"]
    with (
        openai.OpenAI(
            base_url=f"{devkit['fd2'].url}/kb/knowledge-base/v1", api_key="unused", max_retries=0
        ) as sdk,
        pytest.raises(openai.NotFoundError),
    ):
        sdk.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])


def test_a_hanging_stream_times_out(devkit: Devkit) -> None:
    # The devkit sends its status line (200) before it works out the answer: the time limit
    # then ends the stream with an error event, not a 504 status.
    body = {"stream": True, "messages": [{"role": "user", "content": "x"}]}
    started = time.monotonic()
    answer = post(devkit, "/hung/v1/chat/completions", {**body, "model": "hang"})
    assert time.monotonic() - started < 5
    assert answer.status_code == 200 and answer.headers.get("x-request-id")
    (event,) = [line for line in answer.text.splitlines() if line.startswith("data: ")]
    assert json.loads(event[len("data: ") :])["error"]["code"] == "gateway_timeout"


def test_queries_are_charged_their_estimate_against_token_limits(devkit: Devkit) -> None:
    # tokens_per_minute 2500; a query costs its question's tokens plus 1024 for the answer.
    statuses = [post(devkit, "/metered-kb/query", QUERY).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    # Retrieval generates nothing: only the question's tokens, which still fit.
    assert post(devkit, "/metered-kb/retrieve", QUERY).status_code == 200
