"""`structured_prompt`: POST /v1/analyze and /v1/analyze/batch in the Structured Prompt
Service's shapes, over inference modules called in process (the scripted upstream behind them)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from ..conftest import Service
from ..support import assert_no_leak, assert_openai_error
from .conftest import PERSON, PROJECT


def analyze(gateway: Service, body: dict[str, Any], path: str = "/v1/analyze") -> httpx.Response:
    return httpx.post(f"{gateway.url}/{PROJECT}/analyze{path}", json=body, timeout=30)


def test_a_valid_answer_first_time(gateway: Service) -> None:
    answer = analyze(gateway, {"prompt": "Who? Ada, 36.", "format": "json", "schema": PERSON})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["object"] == "analysis"
    assert body["data"] == {"name": "Ada", "age": 36}
    assert body["validation_status"] == "valid"
    assert body["attempts"] == 1
    assert body["provider_used"] == "scripted"
    assert body["cached"] is False
    assert body["processing_time_ms"] > 0
    assert body["usage"]["total_tokens"] == 18


def test_an_invalid_answer_is_repaired_by_a_reask(gateway: Service) -> None:
    body = {"prompt": "Who?", "schema": PERSON, "options": {"model": "reask"}}
    result = analyze(gateway, body).json()
    assert result["validation_status"] == "valid"
    assert result["attempts"] == 2
    assert result["data"] == {"name": "Ada", "age": 36}
    assert result["usage"]["prompt_tokens"] == 22  # both calls counted


def test_an_answer_that_never_validates(gateway: Service) -> None:
    body = {"prompt": "Who?", "schema": PERSON, "options": {"model": "bad-json", "max_attempts": 2}}
    result = analyze(gateway, body).json()
    assert result["validation_status"] == "invalid"
    assert result["attempts"] == 2
    assert any("age" in error for error in result["validation_errors"])


def test_include_confidence(gateway: Service) -> None:
    body = {
        "prompt": "Who?",
        "schema": PERSON,
        "options": {"include_confidence": True, "model": "confident"},
    }
    result = analyze(gateway, body).json()
    assert result["validation_status"] == "valid"
    assert result["data"] == {"name": "Ada", "age": 36}
    assert result["confidence"] == 0.9


def test_the_gemini_provider_is_chosen_by_name(gateway: Service) -> None:
    body = {"prompt": "Who?", "schema": PERSON, "options": {"provider": "gemini", "model": "reask"}}
    result = analyze(gateway, body).json()
    assert result["provider_used"] == "gemini"
    assert result["validation_status"] == "valid"
    assert result["attempts"] == 2


def test_a_stored_prompt_with_its_output_schema(gateway: Service) -> None:
    body = {
        "prompt": {"id": "extract", "variables": {"text": "Ada, 36"}},
        "options": {"model": "json"},
    }
    result = analyze(gateway, body).json()
    assert result["validation_status"] == "valid"
    assert result["data"] == {"name": "Ada", "age": 36}


def test_cache_ttl_goes_through_the_response_cache(gateway: Service) -> None:
    prompt = f"cache me {uuid.uuid4()}"
    body = {"prompt": prompt, "schema": PERSON, "options": {"provider": "cached", "cache_ttl": 60}}
    first = analyze(gateway, body).json()
    second = analyze(gateway, body).json()
    assert first["cached"] is False
    assert second["cached"] is True
    assert second["data"] == first["data"]


def test_batch_with_per_item_results_and_a_summary(gateway: Service) -> None:
    items = [
        {"prompt": "one", "schema": PERSON},
        {"prompt": "two", "schema": PERSON, "options": {"model": "reask"}},
        {"prompt": "three", "schema": {"type": "nonsense"}},
        {"prompt": "", "schema": PERSON},
        {"prompt": "five", "schema": PERSON, "options": {"model": "bad-json", "max_attempts": 1}},
    ]
    answer = analyze(gateway, {"items": items, "max_concurrency": 2}, "/v1/analyze/batch")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    results = body["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3, 4]
    assert [r["success"] for r in results] == [True, True, False, False, True]
    assert results[2]["error"]["param"] == "schema"
    assert results[3]["error"]["param"] == "items[3].prompt"
    assert body["summary"] == {
        **body["summary"],
        "total": 5,
        "succeeded": 3,
        "failed": 2,
        "valid": 2,
        "invalid": 1,
    }


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"prompt": 5}, 400, "prompt"),
        ({"prompt": "x", "format": "xml"}, 400, "format"),
        ({"prompt": "x", "schema": {"type": "nonsense"}}, 400, "schema"),
        ({"prompt": "x", "options": {"cache_ttl": "soon"}}, 400, "options.cache_ttl"),
        ({"prompt": "x", "options": {"provider": "nope"}}, 400, "options.provider"),
        ({"prompt": "x", "surprise": 1}, 400, "surprise"),
        ({"prompt": {"id": "missing-prompt"}}, 404, "prompt.id"),
        ({"prompt": {"id": "extract", "variables": {}}}, 400, "prompt.variables"),
        (
            {"prompt": {"id": "extract", "version": "7", "variables": {"text": "x"}}},
            404,
            "prompt.version",
        ),
    ],
)
def test_bad_input_is_a_named_openai_error(
    gateway: Service, body: dict[str, Any], status: int, param: str
) -> None:
    answer = analyze(gateway, body)
    error = assert_openai_error(answer.content, status=None)
    assert answer.status_code == status, answer.text
    assert error["param"] == param
    assert_no_leak(answer.text)


def test_batch_bounds(gateway: Service) -> None:
    too_many = {"items": [{"prompt": "x"}] * 101}
    assert analyze(gateway, too_many, "/v1/analyze/batch").status_code == 400
    assert analyze(gateway, {"items": []}, "/v1/analyze/batch").status_code == 400
