"""Chat completion chunks as the Responses API's typed stream events (one translator a stream).

Order, as OpenAI sends it: `response.created`, `response.in_progress`; per output item
`response.output_item.added`, for text `response.content_part.added` then
`response.output_text.delta`s, for a function call `response.function_call_arguments.delta`s;
at the end each item's `.done` events, then `response.completed` (or `response.incomplete`). A
stream that fails after it started ends with an `error` event and `response.failed`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from fd2_inference.responses.answer import call_item, finished, message_item, new_id


def sse(kind: str, payload: Mapping[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


class _Call:
    __slots__ = ("arguments", "call_id", "item_id", "name", "output_index")

    def __init__(self, output_index: int, call_id: str, name: str) -> None:
        self.output_index = output_index
        self.item_id = new_id("fc")
        self.call_id = call_id
        self.name = name
        self.arguments: list[str] = []


class ResponseEvents:
    """Feeds on chat chunks, returns the SSE bytes of the Responses events they make."""

    def __init__(self, response: dict[str, Any]) -> None:
        self.response = response
        self._seq = 0
        self._text: list[str] | None = None
        self._text_id = ""
        self._text_index = 0
        self._calls: dict[int, _Call] = {}
        self._next_index = 0
        self._finish: Any = None
        self.usage: Mapping[str, Any] | None = None

    def _event(self, kind: str, **payload: Any) -> bytes:
        data = sse(kind, {"type": kind, "sequence_number": self._seq, **payload})
        self._seq += 1
        return data

    def start(self) -> bytes:
        snapshot = dict(self.response)
        return self._event("response.created", response=snapshot) + self._event(
            "response.in_progress", response=snapshot
        )

    def feed(self, chunk: Mapping[str, Any]) -> bytes:
        out: list[bytes] = []
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if isinstance(text, str) and text:
                out.append(self._text_delta(text))
            out.extend(self._call_delta(call) for call in delta.get("tool_calls") or ())
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
        return b"".join(out)

    def _text_delta(self, text: str) -> bytes:
        out = b""
        if self._text is None:
            self._text = []
            self._text_id = new_id("msg")
            self._text_index = self._next_index
            self._next_index += 1
            item = message_item("", self._text_id, "in_progress")
            item["content"] = []
            out += self._event(
                "response.output_item.added", output_index=self._text_index, item=item
            )
            out += self._event(
                "response.content_part.added",
                item_id=self._text_id,
                output_index=self._text_index,
                content_index=0,
                part={"type": "output_text", "text": "", "annotations": [], "logprobs": []},
            )
        self._text.append(text)
        return out + self._event(
            "response.output_text.delta",
            item_id=self._text_id,
            output_index=self._text_index,
            content_index=0,
            delta=text,
            logprobs=[],
        )

    def _call_delta(self, delta: Mapping[str, Any]) -> bytes:
        index = int(delta.get("index", 0))
        function = delta.get("function") or {}
        out = b""
        call = self._calls.get(index)
        if call is None:
            call = self._calls[index] = _Call(
                self._next_index,
                str(delta.get("id") or new_id("call")),
                str(function.get("name") or ""),
            )
            self._next_index += 1
            item = call_item(
                {"id": call.call_id, "function": {"name": call.name, "arguments": ""}},
                call.item_id,
                "in_progress",
            )
            out += self._event(
                "response.output_item.added", output_index=call.output_index, item=item
            )
        elif function.get("name") and not call.name:
            call.name = str(function["name"])
        piece = function.get("arguments")
        if isinstance(piece, str) and piece:
            call.arguments.append(piece)
            out += self._event(
                "response.function_call_arguments.delta",
                item_id=call.item_id,
                output_index=call.output_index,
                delta=piece,
            )
        return out

    def _items(self) -> list[tuple[int, dict[str, Any]]]:
        items: list[tuple[int, dict[str, Any]]] = []
        if self._text is not None:
            items.append((self._text_index, message_item("".join(self._text), self._text_id)))
        for call in self._calls.values():
            function = {"name": call.name, "arguments": "".join(call.arguments)}
            items.append(
                (
                    call.output_index,
                    call_item({"id": call.call_id, "function": function}, call.item_id),
                )
            )
        return sorted(items, key=lambda pair: pair[0])

    def finish(self) -> bytes:
        out: list[bytes] = []
        items = self._items()
        for index, item in items:
            if item["type"] == "message":
                part = item["content"][0]
                out.append(
                    self._event(
                        "response.output_text.done",
                        item_id=item["id"],
                        output_index=index,
                        content_index=0,
                        text=part["text"],
                        logprobs=[],
                    )
                )
                out.append(
                    self._event(
                        "response.content_part.done",
                        item_id=item["id"],
                        output_index=index,
                        content_index=0,
                        part=part,
                    )
                )
            else:
                out.append(
                    self._event(
                        "response.function_call_arguments.done",
                        item_id=item["id"],
                        output_index=index,
                        name=item["name"],
                        arguments=item["arguments"],
                    )
                )
            out.append(self._event("response.output_item.done", output_index=index, item=item))
        response = finished(self.response, [item for _, item in items], self._finish, self.usage)
        kind = "response.completed" if response["status"] == "completed" else "response.incomplete"
        out.append(self._event(kind, response=response))
        return b"".join(out)

    def fail(self, status: int, code: str | None, message: str) -> bytes:
        """The end of a stream that failed after it started."""
        self.response["status"] = "failed"
        self.response["error"] = {"code": code or "server_error", "message": message}
        return self._event(
            "error", code=code, message=message, param=None, status=status
        ) + self._event("response.failed", response=self.response)

    @property
    def output(self) -> list[dict[str, Any]]:
        return [item for _, item in self._items()]
