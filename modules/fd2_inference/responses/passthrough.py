"""`/v1/responses` relayed to an upstream that has it (OpenAI), for modules that opt in
(`responses: {"passthrough": true}` in an OpenAI-compatible module's config).

The body goes upstream as the client sent it, except that a `prompt` naming one of fd2's
prompts is rendered first (its messages become the first input items, its parameters and model
fill what the body leaves out); a prompt id fd2 does not know goes upstream as it is (the
upstream's own stored prompts). `previous_response_id` and `store` are then the upstream's.
Answers are relayed as they come: a plain one through the module's JSON relay (an error body
without the credentials the call carried), a stream byte for byte; a stream that breaks after it
started ends with an `error` event.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, Final

import aiohttp
import msgspec
import orjson

from fd2.metering import Usage
from fd2.prompts.errors import PromptNotFound
from fd2.prompts.resolve import PromptResolver
from fd2.serving.disconnect import cancel_on_disconnect
from fd2.serving.errors import BadRequest
from fd2.serving.request import ClientDisconnected, Request
from fd2.types import Send
from fd2_inference.answers import ERROR_BODY_LIMIT, gateway_error, is_event_stream, relayed_headers
from fd2_inference.exchange import relay_json, send_settled
from fd2_inference.metering import UsageReport
from fd2_inference.responses.events import sse
from fd2_inference.upstream import Upstream, read_answer

PATH: Final = "/responses"
_SSE_HEADERS: Final = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
]
_COMPLETED: Final = b"event: response.completed"
_CAPTURE_MAX: Final = 4 * 1024 * 1024
"""The bytes of a relayed stream's `response.completed` event kept to read its usage."""
_PARAMETERS: Final = {
    "temperature": "temperature",
    "top_p": "top_p",
    "max_tokens": "max_output_tokens",
    "max_completion_tokens": "max_output_tokens",
}


class ResponsesPassthrough:
    def __init__(
        self,
        upstream: Upstream,
        prompts: PromptResolver,
        logger: logging.Logger,
        default_model: str | None,
    ) -> None:
        self._upstream = upstream
        self._prompts = prompts
        self._logger = logger
        self._default_model = default_model

    async def handle(self, request: Request, send: Send) -> None:
        rid = request.request_id
        try:
            body = await self._body(await request.json_object())
            stream = body.get("stream") is True
            call = self._upstream.build(
                "POST", PATH, orjson.dumps(body), request_id=rid, stream=stream
            )
            usage = ResponsesUsage(request)
            if stream:
                work = self._stream(call, send, rid, usage)
            else:
                work = relay_json(self._upstream, call, send, self._logger, rid, usage)
            await cancel_on_disconnect(request, work)
        except ClientDisconnected:
            self._logger.debug("request %s: client disconnected", rid)

    async def _body(self, body: dict[str, Any]) -> dict[str, Any]:
        out = dict(body)
        reference = out.get("prompt")
        if isinstance(reference, Mapping):
            await self._render(out, reference)
        # The module's default model last: the body's, then the prompt's, win over it.
        if not isinstance(out.get("model"), str) and self._default_model:
            out["model"] = self._default_model
        return out

    async def _render(self, out: dict[str, Any], reference: Mapping[str, Any]) -> None:
        try:
            rendered = await self._prompts.render(reference)
        except PromptNotFound as exc:
            if exc.param != "prompt.id":
                raise
            return  # not one of fd2's: the upstream's own stored prompt
        del out["prompt"]
        items: list[Any] = [{"role": m["role"], "content": m["content"]} for m in rendered.messages]
        given = out.get("input")
        if isinstance(given, str):
            items.append({"role": "user", "content": given})
        elif isinstance(given, list):
            items.extend(given)
        elif given is not None:
            raise BadRequest("'input' must be a string or a list of items.", param="input")
        out["input"] = items
        for name, target in _PARAMETERS.items():
            if name in rendered.parameters and target not in out:
                out[target] = rendered.parameters[name]
        if "model" not in out and rendered.model:
            out["model"] = rendered.model
        if rendered.output_schema is not None and "text" not in out:
            schema = {"type": "json_schema", "name": rendered.schema_name}
            out["text"] = {"format": {**schema, "schema": rendered.output_schema}}

    async def _stream(self, call: Any, send: Send, rid: str, usage: ResponsesUsage) -> None:
        upstream, started = self._upstream, False
        completed: bytearray | None = None
        try:
            async with asyncio.timeout(upstream.total_s):
                response = await upstream.open(call)
                try:
                    if not is_event_stream(response.status, response.headers.get("content-type")):
                        answer = await read_answer(response, ERROR_BODY_LIMIT)
                        settled = (response.status, answer, response.raw_headers)
                        await send_settled(send, self._logger, rid, settled, upstream, call)
                        return
                    headers = [*_SSE_HEADERS, *relayed_headers(response.raw_headers)]
                    await send({"type": "http.response.start", "status": 200, "headers": headers})
                    started = True
                    async for chunk in response.content.iter_any():
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                        # The usage is in the last event: keep its bytes (bounded) to read it.
                        at = chunk.find(_COMPLETED) if completed is None else 0
                        if at >= 0:
                            completed = (completed or bytearray()) + chunk[at:]
                            if len(completed) > _CAPTURE_MAX:
                                completed = None
                finally:
                    response.close()
        except (TimeoutError, aiohttp.ClientError) as exc:
            error = gateway_error(exc, upstream.total_s)
            assert error is not None
            if not started:
                raise error from None
            self._logger.warning("request %s: upstream stream failed: %s", rid, error.message)
            payload = {"type": "error", "code": error.code, "message": error.message, "param": None}
            await send(
                {"type": "http.response.body", "body": sse("error", payload), "more_body": False}
            )
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        if completed is not None:
            usage.completed_event(bytes(completed))


class _ResponsesUsage(msgspec.Struct):
    input_tokens: int = 0
    output_tokens: int = 0


class _Completed(msgspec.Struct):
    usage: _ResponsesUsage | None = None


class _CompletedEvent(msgspec.Struct):
    response: _Completed | None = None


_USAGE: Final = msgspec.json.Decoder(_ResponsesUsage | None)
_EVENT: Final = msgspec.json.Decoder(_CompletedEvent)


class ResponsesUsage(UsageReport):
    """Reports the usage of a relayed Responses answer (`input_tokens`, `output_tokens`)."""

    def answer(self, usage: bytes | None) -> None:
        if usage is None:
            return
        try:
            found = _USAGE.decode(usage)
        except msgspec.DecodeError:
            return
        if found is not None:
            self._report(found)

    def completed_event(self, data: bytes) -> None:
        for line in data.split(b"\n"):
            if line.startswith(b"data:"):
                try:
                    event = _EVENT.decode(line[5:])
                except msgspec.DecodeError:
                    return
                if event.response is not None and event.response.usage is not None:
                    self._report(event.response.usage)
                return

    def _report(self, found: _ResponsesUsage) -> None:
        self.request.report_usage(
            Usage(prompt_tokens=found.input_tokens, completion_tokens=found.output_tokens)
        )
