"""model_server end to end: fd2 under Granian in front of the devkit model-server stand-in."""

from __future__ import annotations

import sys
import time

import httpx
import openai
import pytest

from .conftest import Service
from .devkit_services import MODEL_SERVER_KEY, STANDINS, devkit_fixture, refused, reset, seen  # noqa: F401

sys.path.insert(0, str(STANDINS))
from model_server import vector  # the stand-in's own vectors, to compare with

Devkit = dict[str, Service]
TEXTS = [f"text number {index}" for index in range(10)]


def post(devkit: Devkit, path: str, body: object, **headers: str) -> httpx.Response:
    return httpx.post(f"{devkit['fd2'].url}/kb{path}", json=body, headers=headers, timeout=20)


def model_calls(devkit: Devkit) -> list[dict[str, object]]:
    return [item for item in seen(devkit["models"]) if item["method"] == "POST"]


@pytest.fixture
def fresh(devkit: Devkit) -> Devkit:
    reset(devkit["models"])
    return devkit


def test_embeddings_with_the_default_model(fresh: Devkit) -> None:
    answer = post(fresh, "/models/embeddings", {"texts": ["hello", "world"]})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body == {
        "embeddings": [vector("hello"), vector("world")],
        "dimensions": 8,
        "model": "BAAI/bge-large-en-v1.5",
    }
    (call,) = model_calls(fresh)
    assert call["path"] == "/api/v1/models/embeddings"
    assert call["body"] == {"texts": ["hello", "world"], "model_name": "BAAI/bge-large-en-v1.5"}


@pytest.mark.parametrize("count", [10, 61])
def test_big_inputs_go_in_batches_and_come_back_in_order(fresh: Devkit, count: int) -> None:
    texts = [f"text number {index}" for index in range(count)]
    answer = post(
        fresh, "/models/embeddings", {"texts": texts, "model_name": "intfloat/e5-large-v2"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["embeddings"] == [vector(text) for text in texts]
    assert answer.json()["dimensions"] == 8
    sizes = sorted(len(call["body"]["texts"]) for call in model_calls(fresh))  # type: ignore[index]
    assert sizes == sorted([4] * (count // 4) + [count % 4])  # batch_size 4
    peak = httpx.get(f"{fresh['models'].url}/_standin/peak", timeout=5).json()["peak"]
    assert 1 < peak <= 4  # batches overlap, never more than CONCURRENT_BATCHES at once


def test_rerank_and_classify_in_batches(fresh: Devkit) -> None:
    answer = post(fresh, "/models/rerank", {"query": "number 3", "texts": TEXTS})
    assert answer.status_code == 200, answer.text
    scores = answer.json()["scores"]
    assert len(scores) == 10 and scores[3] == 1.0 and scores[0] == 0.5
    assert answer.json()["model"] == "BAAI/bge-reranker-large"
    answer = post(
        fresh,
        "/models/classify",
        {"texts": [*TEXTS[:4], "a positive review"], "labels": ["positive", "negative"]},
    )
    assert answer.status_code == 200, answer.text
    results = answer.json()["text_results"]
    assert len(results) == 5 and results[4]["top_label"] == "positive"
    assert results[0]["results"]


def test_health(devkit: Devkit) -> None:
    answer = httpx.get(f"{devkit['fd2'].url}/kb/models/health", timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "ok"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/models/embeddings", {"texts": ["x"], "model_name": "sentence-transformers/other"}),
        ("/models/rerank", {"query": "q", "texts": ["x"], "model_name": "intfloat/e5-large-v2"}),
        ("/models/classify", {"texts": ["x"], "labels": ["a"], "model_name": "m"}),
    ],
)
def test_a_model_not_on_the_list_is_a_400_naming_it(
    fresh: Devkit, path: str, body: dict[str, object]
) -> None:
    error = refused(post(fresh, path, body), 400)
    assert repr(body["model_name"]) in error["message"]
    assert error["code"] == "model_not_found" and error["param"] == "model_name"
    assert model_calls(fresh) == []


def test_the_openai_sdk_embeds_through_fd2(devkit: Devkit) -> None:
    with openai.OpenAI(
        base_url=f"{devkit['fd2'].url}/kb/models/v1", api_key="unused", max_retries=0
    ) as sdk:
        # The SDK asks for base64 unless told otherwise, and decodes it itself.
        result = sdk.embeddings.create(model="intfloat/e5-large-v2", input=TEXTS)
        assert [item.index for item in result.data] == list(range(10))
        for item, text in zip(result.data, TEXTS, strict=True):
            assert item.embedding == pytest.approx(vector(text), abs=1e-6)
        assert result.model == "intfloat/e5-large-v2"
        assert result.usage.prompt_tokens > 0
        floats = sdk.embeddings.create(
            model="BAAI/bge-large-en-v1.5", input="hello", encoding_format="float"
        )
        assert floats.data[0].embedding == vector("hello")
        with pytest.raises(openai.BadRequestError) as caught:
            sdk.embeddings.create(model="text-embedding-3-small", input="hello")
        assert "text-embedding-3-small" in str(caught.value)


def test_openai_embeddings_default_the_model(devkit: Devkit) -> None:
    answer = post(devkit, "/models/v1/embeddings", {"input": "hello"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["model"] == "BAAI/bge-large-en-v1.5"
    assert answer.json()["data"][0]["embedding"] == vector("hello")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": [1, 2, 3]}, "input"),
        ({"input": []}, "input"),
        ({"input": "x", "dimensions": 4}, "dimensions"),
        ({"input": "x", "encoding_format": "int8"}, "encoding_format"),
        ({"input": "x", "model": 5}, "model"),
    ],
)
def test_openai_bodies_refused(devkit: Devkit, body: object, param: str) -> None:
    assert refused(post(devkit, "/models/v1/embeddings", body), 400)["param"] == param


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/models/embeddings", {}, "texts"),
        ("/models/embeddings", {"texts": "one string"}, "texts"),
        ("/models/embeddings", {"texts": ["a", 2]}, "texts"),
        ("/models/rerank", {"texts": ["a"]}, "query"),
        ("/models/classify", {"texts": ["a"]}, "labels"),
        (
            "/models/classify",
            {"texts": ["a"], "labels": ["b"], "include_results": 1},
            "include_results",
        ),
    ],
)
def test_wrong_types_are_refused_before_the_server(
    fresh: Devkit, path: str, body: object, param: str
) -> None:
    assert refused(post(fresh, path, body), 400)["param"] == param
    assert model_calls(fresh) == []


def test_bad_json(devkit: Devkit) -> None:
    url = f"{devkit['fd2'].url}/kb/models/embeddings"
    refused(httpx.post(url, content=b'{"texts": [', timeout=10), 400)
    refused(httpx.get(url, timeout=10), 405)


def test_server_failures_are_502_without_internals(devkit: Devkit) -> None:
    error = refused(post(devkit, "/models/embeddings", {"texts": ["x"], "model_name": "boom"}), 502)
    assert "CUDA" not in error["message"]
    error = refused(
        post(devkit, "/models/embeddings", {"texts": ["x"], "model_name": "gone-missing"}), 502
    )
    assert error["message"] == "The model server failed (HTTP 500)."
    refused(post(devkit, "/models/embeddings", {"texts": ["x"], "model_name": "garbage"}), 502)
    # A batch answered with fewer vectors than texts is not passed on as if whole.
    error = refused(
        post(devkit, "/models/embeddings", {"texts": TEXTS, "model_name": "short"}), 502
    )
    assert "batch" in error["message"]


def test_a_hanging_server_times_out(devkit: Devkit) -> None:
    started = time.monotonic()
    refused(post(devkit, "/models/embeddings", {"texts": TEXTS, "model_name": "hang"}), 504)
    assert time.monotonic() - started < 6


def test_a_server_that_is_down(devkit: Devkit) -> None:
    error = refused(post(devkit, "/down-models/embeddings", {"texts": ["x"]}), 502)
    assert "could not be reached" in error["message"]


def test_the_modules_api_key_goes_to_the_server_never_back(fresh: Devkit) -> None:
    answer = post(fresh, "/keyed-models/embeddings", {"texts": ["x"]}, authorization="Bearer mine")
    assert answer.status_code == 200, answer.text
    (call,) = model_calls(fresh)
    headers = call["headers"]
    assert isinstance(headers, dict)
    assert headers["authorization"] == f"Bearer {MODEL_SERVER_KEY}"
    assert MODEL_SERVER_KEY not in answer.text
