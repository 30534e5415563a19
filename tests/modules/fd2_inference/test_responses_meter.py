"""The `/v1/responses` meter: the model authorise checks is the one the request will use (a
prompt's own when the body names none), and the estimate counts the prompt's messages."""

from __future__ import annotations

import logging
from typing import Any

import orjson

from fd2.prompts.resolve import PromptResolver
from fd2.serving.request import Request
from fd2.types import Message
from fd2_inference.responses.endpoint import ResponsesEndpoint
from fd2_inference.responses.store import ResponseStore

PROMPTS = {
    "p": {
        "versions": [
            {
                "messages": [{"role": "user", "content": "word " * 200 + "{{ x }}"}],
                "model": "gpt-4o",
            }
        ]
    }
}


def _request(body: dict[str, Any]) -> Request:
    data = orjson.dumps(body)

    async def receive() -> Message:
        return {"type": "http.request", "body": data, "more_body": False}

    scope = {"type": "http", "method": "POST", "path": "/v1/responses", "headers": []}
    return Request(
        scope,
        receive,
        request_id="r",
        project="p",
        module="m",
        environment="development",
        path="/v1/responses",
        content_length=len(data),
        max_body=1 << 20,
    )


def _endpoint() -> ResponsesEndpoint:
    resolver = PromptResolver.for_module("p", {"prompts": PROMPTS}, None)
    store = ResponseStore(None, "p", "m", 60)
    return ResponsesEndpoint(None, store, resolver, logging.getLogger("t"), "gpt-4o-mini")  # type: ignore[arg-type]


async def test_the_prompts_model_is_the_one_authorised() -> None:
    endpoint = _endpoint()
    assert (
        await endpoint.model(_request({"prompt": {"id": "p", "variables": {"x": 1}}})) == "gpt-4o"
    )
    assert await endpoint.model(_request({"model": "m1", "prompt": {"id": "p"}})) == "m1"
    assert await endpoint.model(_request({"input": "x"})) == "gpt-4o-mini"
    assert await endpoint.model(_request({"prompt": {"id": "nope"}})) == "gpt-4o-mini"


async def test_the_estimate_counts_the_prompt() -> None:
    endpoint = _endpoint()
    with_prompt = await endpoint.estimate(
        _request({"prompt": {"id": "p", "variables": {"x": 1}}, "input": "hi"})
    )
    without = await endpoint.estimate(_request({"input": "hi", "max_output_tokens": 10}))
    assert with_prompt.prompt_tokens > without.prompt_tokens + 150
    assert without.completion_bound == 10
    # Bad variables are the handler's to refuse: the estimate does not fail on them.
    bad = await endpoint.estimate(_request({"prompt": {"id": "p", "variables": [1]}}))
    assert bad.model == "gpt-4o"


def test_a_relayed_responses_answer_reports_its_usage() -> None:
    from fd2_inference.responses.passthrough import ResponsesUsage

    request = _request({"input": "x"})
    report = ResponsesUsage(request)
    report.answer(b'{"input_tokens": 5, "output_tokens": 3, "total_tokens": 8}')
    assert request.usage is not None
    assert (request.usage.prompt_tokens, request.usage.completion_tokens) == (5, 3)
    event = {
        "type": "response.completed",
        "response": {"usage": {"input_tokens": 7, "output_tokens": 2}},
    }
    report.completed_event(b"event: response.completed\ndata: " + orjson.dumps(event) + b"\n\n")
    assert (request.usage.prompt_tokens, request.usage.completion_tokens) == (7, 2)
    report.completed_event(b"event: response.completed\ndata: {not json")
    assert request.usage.prompt_tokens == 7
