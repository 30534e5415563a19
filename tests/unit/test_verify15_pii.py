"""Independent review of PII redaction (issue 15, point 5): near misses of every checksum, values
split at every point of a stream (content and tool call arguments), hashing keyed and stable,
compact international phone numbers, and a block that never echoes the value."""

from __future__ import annotations

import orjson
import pytest

from fd2._native import PII_KINDS, PiiScanner
from fd2.privacy.policy import redaction_settings
from fd2.privacy.redactor import Found, Redactor
from fd2.privacy.stream import StreamRedactor

SCANNER = PiiScanner(PII_KINDS)

VALUES = {
    "email": "jane.doe@example.org",
    "phone": "+4915112345678",
    "card": "5500 0000 0000 0004",
    "iban": "GB82WEST12345698765432",
    "ssn": "078-05-1120",
    "ipv4": "203.0.113.7",
    "ipv6": "2001:db8:85a3::8a2e:370:7334",
    "credential": "ghp_" + "Ab3" * 12,
}


def redactor(key: str = "k" * 32, **raw: object) -> Redactor:
    settings = redaction_settings({"hash_key": key, **raw})
    assert settings is not None
    return Redactor(settings.actions(), key.encode())


@pytest.mark.parametrize("kind", sorted(VALUES))
def test_every_kind_is_found_alone_and_in_json_escapes(kind: str) -> None:
    value = VALUES[kind]
    assert SCANNER.scan(f"({value})") == [(kind, 1, 1 + len(value))]
    found = Found()
    out = redactor().json({"messages": [{"content": f"x {value} y"}]}, found)
    assert value not in orjson.dumps(out).decode()
    assert found.counts == {kind: 1}


@pytest.mark.parametrize(
    "text",
    [
        "5500 0000 0000 0005",  # Luhn off by one
        "4111111111111112",
        "GB82WEST12345698765431",  # mod 97 off by one
        "DE89370400440532013001",
        "078-05-0000",  # serial 0000
        "000-05-1120",
        "666-05-1120",
        "203.0.113.256",
        "+49 151",  # too few digits
        "+12345678",  # compact and short: a signed number, not a phone
        "jane.doe@example",  # no dotted domain
        "ghp_short",
    ],
)
def test_near_misses_are_left_alone(text: str) -> None:
    assert SCANNER.scan(f"value {text} end") == []


def test_hashing_is_stable_per_key_and_differs_between_keys() -> None:
    first, second = redactor("a" * 32, default="hash"), redactor("b" * 32, default="hash")
    text = f"mail {VALUES['email']}"
    one, again, other = (r.text(text, Found()) for r in (first, first, second))
    assert one == again != other
    assert VALUES["email"] not in one and "jane" not in one


def test_a_block_refuses_but_the_message_never_holds_the_value() -> None:
    from fd2.pipeline.redaction import PiiBlocked
    from fd2.privacy.policy import LABELS

    r = redactor(kinds={"card": "block"})
    found = Found()
    r.json({"content": f"pay {VALUES['card']}"}, found)
    assert found.blocked == "card"
    error = PiiBlocked(f"The request contains {LABELS['card']} (card).", param="card")
    assert VALUES["card"] not in str(error) and "5500" not in str(error)


def _chat_events(deltas: list[dict[str, object]], finish: str) -> bytes:
    base = {"id": "c", "object": "chat.completion.chunk", "model": "m"}
    events = [
        {**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas
    ]
    events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    return b"".join(b"data: " + orjson.dumps(e) + b"\n\n" for e in events) + b"data: [DONE]\n\n"


def _replayed(raw: bytes) -> tuple[str, str, int]:
    stream = StreamRedactor(redactor())
    out = stream.feed(raw) + stream.finish()
    content, arguments, events = "", "", 0
    for event in out.split(b"\n\n"):
        if not event.startswith(b"data: {"):
            continue
        events += 1
        for choice in orjson.loads(event[6:])["choices"]:
            delta = choice.get("delta", {})
            content += delta.get("content", "")
            for call in delta.get("tool_calls", []):
                assert call["index"] == 0
                arguments += call["function"].get("arguments", "")
    return content, arguments, events


@pytest.mark.parametrize("kind", sorted(VALUES))
def test_a_value_split_at_every_point_of_the_content_is_masked(kind: str) -> None:
    value = VALUES[kind]
    text = f"here: {value} ok"
    for cut in range(1, len(text)):
        raw = _chat_events([{"content": text[:cut]}, {"content": text[cut:]}], "stop")
        content, _, events = _replayed(raw)
        assert content == f"here: [{kind.upper()}] ok", (cut, content)
        assert events == 3


@pytest.mark.parametrize("kind", ["email", "card", "phone", "credential"])
def test_a_value_split_across_tool_call_argument_pieces_is_masked(kind: str) -> None:
    arguments = orjson.dumps({"to": VALUES[kind], "n": 1}).decode()
    pieces = [arguments[i : i + 3] for i in range(0, len(arguments), 3)]
    first = {
        "tool_calls": [
            {"index": 0, "id": "call_1", "type": "function", "function": {"name": "send"}}
        ]
    }
    deltas: list[dict[str, object]] = [first] + [
        {"tool_calls": [{"index": 0, "function": {"arguments": p}}]} for p in pieces
    ]
    _, joined, events = _replayed(_chat_events(deltas, "tool_calls"))
    assert VALUES[kind] not in joined
    assert orjson.loads(joined) == {"to": f"[{kind.upper()}]", "n": 1}
    assert events == len(deltas) + 1  # every event keeps its place


def _named(name: str, value: dict[str, object]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(value) + b"\n\n"


def _anthropic(pieces: list[str], field: str = "text") -> bytes:
    kind = {"text": "text_delta", "partial_json": "input_json_delta"}[field]
    raw = _named("message_start", {"type": "message_start", "message": {"id": "msg_1"}})
    raw += _named("content_block_start", {"type": "content_block_start", "index": 0})
    for n, piece in enumerate(pieces):
        delta = {"type": "content_block_delta", "index": 0, "delta": {"type": kind, field: piece}}
        raw += _named("content_block_delta", delta)
        if n == 0:
            raw += _named("ping", {"type": "ping"})  # held text survives other events
    raw += _named("content_block_stop", {"type": "content_block_stop", "index": 0})
    raw += _named("message_stop", {"type": "message_stop"})
    return raw


def _anthropic_text(out: bytes, field: str = "text") -> tuple[str, list[str]]:
    text, names = "", []
    for event in out.split(b"\n\n"):
        if not event:
            continue
        name_line, data_line = event.split(b"\n")
        names.append(name_line[7:].decode())
        value = orjson.loads(data_line[6:])
        if value["type"] == "content_block_delta":
            text += value["delta"][field]
    return text, names


@pytest.mark.parametrize("kind", ["email", "card", "iban", "credential"])
def test_an_anthropic_stream_with_a_value_split_at_every_point_is_masked(kind: str) -> None:
    text = f"see {VALUES[kind]} end"
    for cut in range(1, len(text)):
        stream = StreamRedactor(redactor())
        out = stream.feed(_anthropic([text[:cut], text[cut:]])) + stream.finish()
        joined, names = _anthropic_text(out)
        assert joined == f"see [{kind.upper()}] end", (cut, joined)
        assert VALUES[kind].encode() not in out
        # Held text goes out before its block closes; the message still ends last.
        assert names[-2:] == ["content_block_stop", "message_stop"]
        assert stream.found.counts == {kind: 1}


def test_anthropic_tool_input_split_across_pieces_is_masked() -> None:
    arguments = orjson.dumps({"to": VALUES["email"]}).decode()
    pieces = [arguments[i : i + 4] for i in range(0, len(arguments), 4)]
    stream = StreamRedactor(redactor())
    out = stream.feed(_anthropic(pieces, "partial_json")) + stream.finish()
    joined, _ = _anthropic_text(out, "partial_json")
    assert orjson.loads(joined) == {"to": "[EMAIL]"}


def test_a_responses_stream_with_a_value_split_across_deltas_is_masked() -> None:
    value = VALUES["card"]
    text = f"pay with {value} now"
    base = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    raw = b""
    for n, piece in enumerate([text[:12], text[12:18], text[18:]]):
        event = {"type": "response.output_text.delta", **base, "delta": piece, "sequence_number": n}
        raw += _named("response.output_text.delta", event)
    done = {"type": "response.output_text.done", **base, "text": text, "sequence_number": 9}
    raw += _named("response.output_text.done", done)
    raw += _named("response.completed", {"type": "response.completed", "response": {"id": "r"}})
    stream = StreamRedactor(redactor())
    out = stream.feed(raw) + stream.finish()
    assert value.encode() not in out
    deltas = ""
    for event in out.split(b"\n\n"):
        if event.startswith(b"event: response.output_text.delta"):
            deltas += orjson.loads(event.split(b"\n")[1][6:])["delta"]
        if event.startswith(b"event: response.output_text.done"):
            assert orjson.loads(event.split(b"\n")[1][6:])["text"] == "pay with [CARD] now"
    assert deltas == "pay with [CARD] now"
