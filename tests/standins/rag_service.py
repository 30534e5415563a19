"""A RAG devkit (nirb28/dsp_ai_rag2) RAG-service stand-in: its API, answers and error shapes.

Run it with ``python tests/standins/rag_service.py --port 9300 [--jwt-secret S]``.

Speaks the devkit's own routes and shapes (facts from its app/api/endpoints.py,
app/model_schemas/base_models.py, app/services/security_service.py, unified_openai_endpoints.py):

- ``POST /api/v1/query`` (QueryRequest -> QueryResponse), ``POST /api/v1/retrieve``
  (RetrieveRequest -> RetrieveResponse), ``GET /api/v1/health`` (HealthResponse);
- ``POST /v1/chat/completions`` (``model`` = configuration; ``stream: true`` streams the answer
  word by word, a final chunk with ``finish_reason: "stop"``, then ``[DONE]``; as in the devkit,
  a streamed answer starts (200) before it is worked out, so a refused token or a failure is
  an event ``{"error": {"message": str(exception), ...}}`` ending the stream without
  ``[DONE]``, and ``hang`` hangs after the status line), ``GET /v1/models``;
- errors as the devkit writes them: ``{"error": <detail>, "detail": <detail>, "timestamp"}`` for
  its HTTPExceptions, FastAPI's ``{"detail": [{"type", "loc", "msg", "input"}]}`` with 422 for a
  body that fails validation. As in the devkit, ``/query`` turns every failure (an unknown
  configuration, a refused token) into a 500 ``Internal server error: ...``; ``/retrieve``
  answers 404 (a configuration after the first that is unknown) and 401 as such, and an unknown
  first configuration with a 500 (its security lookup's KeyError).

Configurations: ``default``, ``kb``, ``production-kb`` (open) and ``secure`` (security enabled:
``Authorization: Bearer <JWT>`` signed HS256 with ``--jwt-secret``; its ``metadata_filter``
claim is ``$and``-ed with the request's filter). Behaviours, by configuration name: ``boom``
(500), ``hang`` (no answer for 60 s), ``garbage`` (200, not JSON), ``flaky`` (503 for the first
two calls after a reset, then as ``default``); any other name is unknown. ``boom`` and ``hang``
also work as the ``model`` of a chat completion.

``GET /_standin/requests`` lists the last requests (path, headers, decoded body, the filter the
devkit would apply); ``POST /_standin/reset`` clears it and the ``flaky`` count.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from collections import deque
from datetime import datetime
from typing import Any

import jwt
import orjson
from serving import read_body, send_json  # beside this script, first on sys.path

OPEN_CONFIGURATIONS = frozenset({"default", "kb", "production-kb", "flaky"})
SECURE = "secure"
_SEEN: deque[dict[str, Any]] = deque(maxlen=200)
_FLAKY = {"failures": 0}


class Refused(Exception):
    """The devkit's HTTPException: a status and a detail."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class Invalid(Exception):
    """FastAPI's request validation error (422)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("invalid")
        self.errors = errors


def _now() -> str:
    return datetime.now().isoformat()


def _devkit_error(status: int, detail: str) -> tuple[int, dict[str, Any]]:
    return status, {"error": detail, "detail": detail, "timestamp": _now()}


def _field_error(kind: str, field: str, msg: str, value: Any) -> dict[str, Any]:
    return {"type": kind, "loc": ["body", field], "msg": msg, "input": value}


def _validate(body: Any, *, k_max: int) -> dict[str, Any]:
    """What pydantic would refuse in QueryRequest / RetrieveRequest (the fields used here)."""
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
    errors = []
    query = body.get("query")
    if query is None:
        errors.append(_field_error("missing", "query", "Field required", body))
    elif not isinstance(query, str):
        errors.append(_field_error("string_type", "query", "Input should be a valid string", query))
    elif not 1 <= len(query) <= 1000:
        errors.append(
            _field_error(
                "string_too_long" if query else "string_too_short",
                "query",
                "String should have between 1 and 1000 characters",
                query,
            )
        )
    k = body.get("k", 5)
    if not isinstance(k, int) or isinstance(k, bool):
        errors.append(_field_error("int_type", "k", "Input should be a valid integer", k))
    elif not 1 <= k <= k_max:
        errors.append(
            _field_error(
                "less_than_equal", "k", f"Input should be less than or equal to {k_max}", k
            )
        )
    threshold = body.get("similarity_threshold")
    if threshold is not None and (not isinstance(threshold, int | float) or threshold < 0):
        errors.append(
            _field_error(
                "greater_than_equal",
                "similarity_threshold",
                "Input should be greater than or equal to 0",
                threshold,
            )
        )
    expansion = body.get("query_expansion")
    if expansion is not None and (
        not isinstance(expansion, dict) or not isinstance(expansion.get("llm_config_name"), str)
    ):
        errors.append(
            {
                "type": "missing",
                "loc": ["body", "query_expansion", "llm_config_name"],
                "msg": "Field required",
                "input": expansion,
            }
        )
    if errors:
        raise Invalid(errors)
    return body


def _security_filter(name: str, authorization: str | None, request_filter: Any) -> Any:
    """The devkit's validate_security_and_merge_filters for one configuration."""
    if name != SECURE:
        return request_filter
    if not authorization:
        raise Refused(401, "Authorization header is required")
    try:
        scheme, token = authorization.split()
    except ValueError:
        raise Refused(
            401, "Invalid authorization header format. Expected 'Bearer <token>'"
        ) from None
    if scheme.lower() != "bearer":
        raise Refused(401, "Invalid authentication scheme. Expected 'Bearer'")
    try:
        claims = jwt.decode(
            token,
            os.environ["RAG_STANDIN_JWT_SECRET"],
            algorithms=["HS256"],
            options={"verify_aud": False},
        )
    except jwt.ExpiredSignatureError:
        raise Refused(401, "Token has expired") from None
    except jwt.InvalidTokenError as exc:
        raise Refused(401, f"Invalid token: {exc}") from None
    claim = claims.get("metadata_filter")
    if not isinstance(claim, dict) or not claim:
        return request_filter
    if not request_filter:
        return claim
    return {"$and": [request_filter, claim]}


async def _behave(name: str) -> None:
    if name == "boom":
        raise Refused(500, "Internal server error: the vector store exploded")
    if name == "hang":
        await asyncio.sleep(60)
    if name == "flaky" and _FLAKY["failures"] < 2:
        _FLAKY["failures"] += 1
        raise Refused(503, "Service starting")


def _known(name: str) -> bool:
    return name in OPEN_CONFIGURATIONS or name == SECURE


def _documents(query: str, name: str, k: int) -> list[dict[str, Any]]:
    return [
        {
            "content": f"Document {index} about {query}",
            "metadata": {"source": f"doc-{index}.pdf", "configuration": name},
            "similarity_score": round(0.9 - index * 0.1, 3),
        }
        for index in range(min(k, 3))
    ]


async def _query(body: Any, authorization: str | None) -> tuple[int, Any]:
    request = _validate(body, k_max=20)
    name = request.get("configuration_name") or "default"
    try:
        # The devkit's /query catches everything, its own HTTPExceptions included, as a 500.
        merged = _security_filter(name, authorization, request.get("filter"))
        if not _known(name) and name not in ("boom", "hang", "garbage"):
            raise KeyError(f"Configuration '{name}' not found")
        await _behave(name)
    except (Refused, KeyError) as exc:
        text = f"{exc.status}: {exc.detail}" if isinstance(exc, Refused) else str(exc)
        return _devkit_error(500, f"Internal server error: {text}")
    _SEEN[-1]["applied_filter"] = merged
    if name == "garbage":
        return 200, b"<html>not json</html>"
    documents = _documents(request["query"], name, request.get("k", 5))
    if not request.get("include_metadata", True):
        for document in documents:
            document["metadata"] = {}
    expansion = request.get("query_expansion")
    return 200, {
        "query": request["query"],
        "answer": f"Answer to {request['query']!r} from {name}",
        "sources": documents,
        "processing_time": 0.012,
        "configuration_name": name,
        "query_expansion_metadata": (
            {"strategy": expansion.get("strategy", "fusion"), "expanded_queries": []}
            if isinstance(expansion, dict) and expansion.get("include_metadata")
            else None
        ),
    }


async def _retrieve(body: Any, authorization: str | None) -> tuple[int, Any]:
    request = _validate(body, k_max=50)
    names = request.get("configuration_names") or [request.get("configuration_name") or "default"]
    special = ("boom", "hang", "garbage")
    if not _known(names[0]) and names[0] not in special:
        # The devkit looks the primary configuration up for its security settings first, and
        # that lookup's KeyError is no HTTPException: an unknown primary one is a 500.
        return _devkit_error(
            500, f"Internal server error: \"Configuration '{names[0]}' not found\""
        )
    try:
        merged = _security_filter(names[0], authorization, request.get("filter"))
        for name in names:
            if not _known(name) and name not in special:
                raise Refused(404, f"Configuration '{name}' not found")
        await _behave(names[0])
    except Refused as exc:  # /retrieve lets its HTTPExceptions through as they are
        return _devkit_error(exc.status, exc.detail)
    _SEEN[-1]["applied_filter"] = merged
    if names[0] == "garbage":
        return 200, b"<html>not json</html>"
    documents = []
    for name in names:
        documents.extend(_documents(request["query"], name, request.get("k", 5)))
    documents = documents[: request.get("k", 5)]
    multi = len(names) > 1
    return 200, {
        "query": request["query"],
        "documents": documents,
        "processing_time": 0.008,
        "configuration_name": None if multi else names[0],
        "configuration_names": names if multi else None,
        "total_found": len(documents),
        "fusion_method": request.get("fusion_method", "rrf") if multi else None,
        "query_expansion_metadata": None,
    }


async def _chat(body: Any, authorization: str | None, send: Any) -> tuple[int, Any] | None:
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return 422, {
            "detail": [
                {
                    "type": "missing",
                    "loc": ["body", "messages"],
                    "msg": "Field required",
                    "input": body,
                }
            ]
        }
    name = body.get("model") or "default"
    if not _known(name) and name not in ("boom", "hang"):
        return _devkit_error(
            404,
            f"Model (configuration) '{name}' not found. "
            "Use GET /v1/models to see available models.",
        )
    if body.get("stream"):
        # The devkit's StreamingResponse starts (200) before its generator answers the question,
        # so what fails after this point is an event `{"error": {"message": str(exception)}}`,
        # and the stream ends without [DONE].
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream; charset=utf-8")],
            }
        )
    try:
        _security_filter(name, authorization, body.get("filter"))
        await _behave(name)
    except Refused as exc:
        if body.get("stream"):
            # str() of a FastAPI HTTPException is "<status>: <detail>"; other exceptions
            # are their own text.
            text = exc.detail if exc.status >= 500 else f"{exc.status}: {exc.detail}"
            event = {"error": {"message": text, "type": "internal_error", "code": "internal_error"}}
            await send(
                {
                    "type": "http.response.body",
                    "body": b"data: " + orjson.dumps(event) + b"\n\n",
                    "more_body": False,
                }
            )
            return None
        return (
            _devkit_error(500, str(exc.detail))
            if exc.status >= 500
            else _devkit_error(exc.status, exc.detail)
        )
    question = next(
        (m.get("content") for m in reversed(body["messages"]) if m.get("role") == "user"), ""
    )
    answer = f"Answer to {question!r} from {name}"
    completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    created = int(time.time())
    if not body.get("stream"):
        return 200, {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": name,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": answer},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11},
            "processing_time": 0.01,
        }
    words = answer.split()
    for index, word in enumerate(words):
        chunk = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": name,
            "choices": [
                {
                    "index": 0,
                    "delta": {"content": word + " " if index < len(words) - 1 else word},
                    "finish_reason": None,
                }
            ],
        }
        await send(
            {
                "type": "http.response.body",
                "body": b"data: " + orjson.dumps(chunk) + b"\n\n",
                "more_body": True,
            }
        )
        await asyncio.sleep(0.005)
    final = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": name,
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
    }
    await send(
        {
            "type": "http.response.body",
            "body": b"data: " + orjson.dumps(final) + b"\n\n" + b"data: [DONE]\n\n",
            "more_body": False,
        }
    )
    return None


def _models() -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {
                "id": name,
                "object": "model",
                "created": 1677610602,
                "owned_by": "rag-system",
                "permission": [],
                "root": name,
                "parent": None,
            }
            for name in sorted(OPEN_CONFIGURATIONS | {SECURE})
        ],
    }


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path, method = scope["path"], scope["method"]
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    raw = await read_body(receive)
    if path == "/_standin/requests":
        await send_json(send, 200, list(_SEEN))
        return
    if path == "/_standin/reset":
        _SEEN.clear()
        _FLAKY["failures"] = 0
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
    authorization = headers.get("authorization")
    result: tuple[int, Any] | None
    try:
        if (method, path) == ("POST", "/api/v1/query"):
            result = await _query(body, authorization)
        elif (method, path) == ("POST", "/api/v1/retrieve"):
            result = await _retrieve(body, authorization)
        elif (method, path) == ("GET", "/api/v1/health"):
            result = (
                200,
                {
                    "status": "healthy",
                    "version": "1.0.0",
                    "timestamp": _now(),
                    "services": {"rag_service": "running", "vector_store": "faiss"},
                },
            )
        elif (method, path) == ("POST", "/v1/chat/completions"):
            result = await _chat(body, authorization, send)
        elif (method, path) == ("GET", "/v1/models"):
            result = 200, _models()
        else:
            result = 404, {"detail": "Not Found"}
    except Invalid as exc:
        result = 422, {"detail": exc.errors}
    if result is not None:
        await send_json(send, *result)


def main() -> None:
    from serving import serve

    parser = argparse.ArgumentParser(description="RAG devkit RAG-service stand-in")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--jwt-secret", default="rag-standin-secret-0123456789abcdef")
    args = parser.parse_args()
    os.environ["RAG_STANDIN_JWT_SECRET"] = args.jwt_secret
    serve(f"{__file__}:app", host=args.host, port=args.port)


if __name__ == "__main__":
    main()
