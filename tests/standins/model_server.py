"""A RAG devkit (nirb28/dsp_ai_rag2) model-server stand-in: its API, answers and error shapes.

Run it with ``python tests/standins/model_server.py --port 9301``.

Speaks the devkit model server's routes under ``/api/v1/models`` (facts from its
app/model_server.py, app/api/model_endpoints.py, app/model_schemas/model_server_models.py):

- ``POST /embeddings`` ``{"texts", "model_name"}`` -> ``{"embeddings", "dimensions", "model"}``
  (deterministic 8-dimension vectors from each text's hash);
- ``POST /rerank`` ``{"query", "texts", "model_name"}`` -> ``{"scores", "model"}`` (the share
  of the query's words found in each text);
- ``POST /classify`` ``{"texts", "labels", "model_name", "include_results"}`` ->
  ``{"text_results": [{"top_label", "top_score", "results"?}], "model"}``;
- ``GET /health`` -> ``{"status": "ok", "loaded_models": [...]}`` (its cache keys:
  ``embedding_<model>``, ``reranker_<model>``).

Errors as the devkit writes them: FastAPI's ``{"detail": <text>}`` (a model it does not have is
a 500 ``Embedding generation failed: ...``, as its endpoint wraps the loader's 404) and
``{"detail": [{"type", "loc", "msg", "input"}]}`` with 422 for a body that fails validation.

Behaviours, by model name: ``boom`` (500), ``hang`` (no answer for 60 s), ``garbage`` (200,
not JSON), ``short`` (one result fewer than texts); any model whose name ends in ``-missing`` is
not on the server. ``GET /_standin/requests`` lists the last requests (path, headers, body);
``POST /_standin/reset`` clears it. ``GET /_standin/peak`` is the most requests it had in
flight at once.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import struct
from collections import deque
from typing import Any

import orjson
from serving import read_body, send_json  # beside this script, first on sys.path

PREFIX = "/api/v1/models"
DEFAULTS = {
    "embeddings": "all-MiniLM-L6-v2",
    "rerank": "cross-encoder/ms-marco-MiniLM-L-6-v2",
    "classify": "cross-encoder/ms-marco-MiniLM-L-6-v2",
}
FAILED = {
    "embeddings": "Embedding generation failed",
    "rerank": "Reranking failed",
    "classify": "Classification failed",
}
_SEEN: deque[dict[str, Any]] = deque(maxlen=500)
_LOADED: list[str] = []
_FLIGHT = {"now": 0, "peak": 0}


class Invalid(Exception):
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("invalid")
        self.errors = errors


def vector(text: str) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [round(value / 65535.0, 6) for value in struct.unpack("<8H", digest[:16])]


def _strings(body: dict[str, Any], field: str, errors: list[dict[str, Any]]) -> list[str]:
    value = body.get(field)
    if value is None:
        errors.append(
            {"type": "missing", "loc": ["body", field], "msg": "Field required", "input": body}
        )
        return []
    if not isinstance(value, list):
        errors.append(
            {
                "type": "list_type",
                "loc": ["body", field],
                "msg": "Input should be a valid list",
                "input": value,
            }
        )
        return []
    for index, item in enumerate(value):
        if not isinstance(item, str):
            errors.append(
                {
                    "type": "string_type",
                    "loc": ["body", field, index],
                    "msg": "Input should be a valid string",
                    "input": item,
                }
            )
    return value


def _validate(kind: str, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise Invalid(
            [
                {
                    "type": "model_attributes_type",
                    "loc": ["body"],
                    "msg": "Input should be a valid dictionary or object to extract fields from",
                    "input": body,
                }
            ]
        )
    errors: list[dict[str, Any]] = []
    _strings(body, "texts", errors)
    if kind == "rerank" and not isinstance(body.get("query"), str):
        errors.append(
            {"type": "missing", "loc": ["body", "query"], "msg": "Field required", "input": body}
        )
    if kind == "classify":
        _strings(body, "labels", errors)
    if errors:
        raise Invalid(errors)
    return body


def _answer(kind: str, body: dict[str, Any], model: str) -> dict[str, Any]:
    texts: list[str] = body["texts"]
    if model == "short":
        texts = texts[:-1]
    if kind == "embeddings":
        vectors = [vector(text) for text in texts]
        return {
            "embeddings": vectors,
            "dimensions": len(vectors[0]) if vectors else 0,
            "model": model,
        }
    if kind == "rerank":
        words = set(body["query"].lower().split())
        scores = [
            round(len(words & set(text.lower().split())) / max(len(words), 1), 6) for text in texts
        ]
        return {"scores": scores, "model": model}
    labels: list[str] = body["labels"]
    results = []
    for text in texts:
        scored = sorted(
            ((label, round(1.0 if label.lower() in text.lower() else 0.1, 6)) for label in labels),
            key=lambda pair: pair[1],
            reverse=True,
        )
        top_label, top_score = scored[0] if scored else ("", 0.0)
        # FastAPI writes every field of the response model: `results` is null when left out.
        item: dict[str, Any] = {"results": None, "top_label": top_label, "top_score": top_score}
        if body.get("include_results", True):
            item["results"] = [{"label": label, "score": score} for label, score in scored]
        results.append(item)
    return {"text_results": results, "model": model}


async def _model_call(kind: str, body: Any) -> tuple[int, Any]:
    request = _validate(kind, body)
    model = request.get("model_name") or DEFAULTS[kind]
    if model.endswith("-missing"):
        which = "Embedding" if kind == "embeddings" else "Reranker"
        inner = f"404: {which} model '{model}' not available locally. Please download it first."
        return 500, {"detail": f"{FAILED[kind]}: 500: Failed to load model: {inner}"}
    if model == "boom":
        return 500, {"detail": f"{FAILED[kind]}: CUDA out of memory"}
    if model == "hang":
        await asyncio.sleep(60)
    if model == "garbage":
        return 200, b"<html>not json</html>"
    # The devkit's cache keys: embedding models apart from cross-encoders (rerank, classify).
    key = f"{'embedding' if kind == 'embeddings' else 'reranker'}_{model}"
    if key not in _LOADED:
        _LOADED.append(key)
    await asyncio.sleep(0.01)  # long enough for batches sent together to overlap
    return 200, _answer(kind, request, model)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path, method = scope["path"], scope["method"]
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    raw = await read_body(receive)
    if path == "/_standin/requests":
        await send_json(send, 200, list(_SEEN))
        return
    if path == "/_standin/peak":
        await send_json(send, 200, {"peak": _FLIGHT["peak"]})
        return
    if path == "/_standin/reset":
        _SEEN.clear()
        _FLIGHT["peak"] = 0
        await send_json(send, 200, {"ok": True})
        return
    body: Any = None
    if raw:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            await send_json(
                send,
                422,
                {
                    "detail": [
                        {
                            "type": "json_invalid",
                            "loc": ["body", 0],
                            "msg": "JSON decode error",
                            "input": {},
                        }
                    ]
                },
            )
            return
    _SEEN.append({"path": path, "method": method, "headers": headers, "body": body})
    _FLIGHT["now"] += 1
    _FLIGHT["peak"] = max(_FLIGHT["peak"], _FLIGHT["now"])
    try:
        kind = path.removeprefix(PREFIX + "/")
        if method == "GET" and path == PREFIX + "/health":
            result: tuple[int, Any] = 200, {"status": "ok", "loaded_models": list(_LOADED)}
        elif method == "POST" and path.startswith(PREFIX + "/") and kind in DEFAULTS:
            result = await _model_call(kind, body)
        else:
            result = 404, {"detail": "Not Found"}
    except Invalid as exc:
        result = 422, {"detail": exc.errors}
    finally:
        _FLIGHT["now"] -= 1
    await send_json(send, *result)


def main() -> None:
    from serving import serve

    parser = argparse.ArgumentParser(description="RAG devkit model-server stand-in")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    serve(f"{__file__}:app", host=args.host, port=args.port)


if __name__ == "__main__":
    main()
