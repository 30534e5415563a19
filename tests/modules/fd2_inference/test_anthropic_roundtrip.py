"""Both directions at once: OpenAI chunks -> Anthropic events (the inbound `/v1/messages`
stream) -> OpenAI chunks (the Anthropic provider's stream translator) says the same thing, for
any split of the text and of the tool arguments, with the events re-framed from their bytes cut
anywhere."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fd2.serving.sse import SseDecoder
from fd2_inference.inbound.anthropic_stream import MessagesStream
from fd2_inference.providers.anthropic_stream import AnthropicStream
from fd2_inference.providers.base import StreamEvent

_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
_PIECES = st.lists(_TEXT.filter(bool), max_size=5)
_CALLS = st.lists(
    st.tuples(
        st.sampled_from(["get_weather", "lookup"]),
        st.dictionaries(st.text(max_size=5), st.text(max_size=10), max_size=3),
        st.integers(min_value=1, max_value=8),
    ),
    max_size=3,
)


def _chunk(delta: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {"id": "chatcmpl-r", "model": "m", "choices": choices, **extra}


def _openai_chunks(pieces: list[str], calls: list[tuple[str, dict[str, str], int]]) -> list[Any]:
    chunks = [_chunk({"role": "assistant", "content": ""})]
    chunks += [_chunk({"content": piece}) for piece in pieces]
    for index, (name, args, size) in enumerate(calls):
        arguments = json.dumps(args)
        opening = {"index": index, "id": f"call_{index}", "type": "function"}
        chunks.append(
            _chunk({"tool_calls": [{**opening, "function": {"name": name, "arguments": ""}}]})
        )
        for start in range(0, len(arguments), size):
            piece = {"index": index, "function": {"arguments": arguments[start : start + size]}}
            chunks.append(_chunk({"tool_calls": [piece]}))
    chunks.append(_chunk({}, "tool_calls" if calls else "stop"))
    usage = {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}
    return [*chunks, _chunk(None, usage=usage)]


@settings(max_examples=150, deadline=None)
@given(pieces=_PIECES, calls=_CALLS, cut=st.integers(min_value=1, max_value=17))
def test_round_trip(
    pieces: list[str], calls: list[tuple[str, dict[str, str], int]], cut: int
) -> None:
    inbound = MessagesStream(model="m", request_id="r")
    wire = b"".join(inbound.feed(chunk) for chunk in _openai_chunks(pieces, calls))
    wire += inbound.finish()
    decoder = SseDecoder()
    outbound = AnthropicStream(model="m", include_usage=True)
    back: list[Any] = []
    for start in range(0, len(wire), cut):
        for name, data, _id in decoder.feed(wire[start : start + cut]):
            back.extend(outbound.feed(StreamEvent(name, data.encode())))
    assert decoder.finish() == 0
    back.extend(outbound.finish())
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in back if c["choices"])
    assert text == "".join(pieces)
    found: dict[int, dict[str, str]] = {}
    for chunk in back:
        for choice in chunk["choices"]:
            for call in choice["delta"].get("tool_calls", ()):
                entry = found.setdefault(call["index"], {"id": "", "name": "", "arguments": ""})
                entry["id"] += call.get("id") or ""
                entry["name"] += call["function"].get("name") or ""
                entry["arguments"] += call["function"].get("arguments") or ""
    assert [(e["id"], e["name"], json.loads(e["arguments"] or "{}")) for e in found.values()] == [
        (f"call_{index}", name, args) for index, (name, args, _size) in enumerate(calls)
    ]
    finishes = [c["choices"][0]["finish_reason"] for c in back if c["choices"]]
    assert finishes[-1] == ("tool_calls" if calls else "stop")
    assert back[-1]["usage"]["prompt_tokens"] == 9
    assert back[-1]["usage"]["completion_tokens"] == 4
