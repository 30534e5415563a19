"""The native PII scanner and the redactor over text, JSON and event streams; property tests:
however a stream is split into events, the same matches are found and the same text comes out."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fd2._native import PII_KINDS, PII_WINDOW, PiiScanner
from fd2.privacy.policy import redaction_settings
from fd2.privacy.redactor import Found, Redactor
from fd2.privacy.stream import StreamRedactor, TextStream
from fd2.serving.errors import ConfigError

SAMPLES = {
    "email": "jane.doe+x@example.co.uk",
    "phone": "+44 20 7946 0958",
    "card": "4111 1111 1111 1111",
    "iban": "DE89 3704 0044 0532 0130 00",
    "ssn": "123-45-6789",
    "ipv4": "192.168.10.1",
    "ipv6": "2001:db8::8a2e:370:7334",
    "credential": "sk-proj-abcdefghijklmnopqrstuvwxyz012345",
}


def scanner() -> PiiScanner:
    return PiiScanner(PII_KINDS)


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_each_kind_is_found_in_prose(kind: str) -> None:
    value = SAMPLES[kind]
    text = f"Hello, my value is {value}. Thanks!"
    assert scanner().scan(text) == [(kind, 19, 19 + len(value))]


@pytest.mark.parametrize(
    "text",
    [
        "card 4111 1111 1111 1112",  # Luhn fails
        "iban GB82 WEST 1234 5698 7654 33",  # mod 97 fails
        "ssn 000-12-3456",
        "version 1.2.3.4.5",
        "at 10:30:00",
        "on 2024-01-15 at 10",
        "order A4111111111111111",
        "sk-short",
    ],
)
def test_near_misses_are_not_matches(text: str) -> None:
    assert scanner().scan(text) == []


def test_offsets_are_character_offsets() -> None:
    text = "héllo → jane@example.com ✓"
    [(kind, start, end)] = scanner().scan(text)
    assert (kind, text[start:end]) == ("email", "jane@example.com")


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown PII kind"):
        PiiScanner(["passport"])


def redactor(**raw: object) -> Redactor:
    settings = redaction_settings({"hash_key": "k" * 32, **raw})
    assert settings is not None
    return Redactor(settings.actions(), (settings.hash_key or "").encode())


def test_actions_mask_hash_detect_block() -> None:
    r = redactor(kinds={"email": "hash", "card": "block", "ipv4": "detect"})
    found = Found()
    out = r.text("a@example.com 10.0.0.1 +1 415 555 2671 4111111111111111", found)
    assert out.startswith("[EMAIL:") and "10.0.0.1" in out and "[PHONE]" in out
    assert "4111111111111111" in out  # a block leaves the text; the request is refused
    assert found.blocked == "card"
    assert found.counts == {"email": 1, "ipv4": 1, "phone": 1, "card": 1}
    # Hashing is stable for a value and key.
    assert r.text("a@example.com", Found()) == out.split(" ")[0]


def test_json_strings_are_redacted_keys_are_not() -> None:
    r = redactor()
    found = Found()
    value = {"messages": [{"role": "user", "content": "mail a@example.com"}], "n": 1}
    out = r.json(value, found)
    assert out == {"messages": [{"role": "user", "content": "mail [EMAIL]"}], "n": 1}
    assert value["messages"][0]["content"] == "mail a@example.com"  # not mutated
    untouched = {"messages": [{"role": "user", "content": "nothing here"}]}
    assert r.json(untouched, Found()) is untouched


def test_hash_without_a_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="hash_key"):
        redaction_settings({"kinds": {"email": "hash"}})
    with pytest.raises(ConfigError):
        redaction_settings({"kinds": {"passport": "mask"}})


WORDS = st.sampled_from(
    [*SAMPLES.values(), "hello", "the", "4111", "1111", "+44", "-", ".", "@", "example.com",
     "DE89", "sk-", "192.168", " ", "  ", "\n", "1", "ok,", "é"]
)  # fmt: skip


def split(text: str, cuts: list[int]) -> list[str]:
    points = sorted({min(c, len(text)) for c in cuts})
    pieces, last = [], 0
    for point in points:
        pieces.append(text[last:point])
        last = point
    pieces.append(text[last:])
    return [piece for piece in pieces if piece]


@settings(max_examples=300, deadline=None)
@given(st.lists(WORDS, max_size=40), st.lists(st.integers(0, 2000), max_size=30))
def test_a_split_text_gives_what_the_whole_gives(words: list[str], cuts: list[int]) -> None:
    text = " ".join(words)
    r = redactor(kinds={"email": "hash"})
    whole_found = Found()
    whole = r.text(text, whole_found, block=False)
    stream = TextStream(r)
    found = Found()
    out = "".join(stream.push(piece, found) for piece in split(text, cuts)) + stream.flush(found)
    assert out == whole
    assert found.counts == whole_found.counts


def sse(pieces: list[str]) -> list[bytes]:
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "m"}
    events = [
        {**base, "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]}
        for p in pieces
    ]
    events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    raw = b"".join(b"data: " + orjson.dumps(e) + b"\n\n" for e in events) + b"data: [DONE]\n\n"
    return [raw]


def streamed_text(redactor_: Redactor, chunks: list[bytes]) -> tuple[str, int, bytes]:
    stream = StreamRedactor(redactor_)
    out = b"".join(stream.feed(chunk) for chunk in chunks) + stream.finish()
    text, events = "", 0
    for event in out.split(b"\n\n"):
        if event.startswith(b"data: {"):
            events += 1
            for choice in orjson.loads(event[6:])["choices"]:
                text += choice["delta"].get("content", "")
    return text, events, out


@settings(max_examples=200, deadline=None)
@given(
    st.lists(WORDS, max_size=40),
    st.lists(st.integers(0, 2000), max_size=30),
    st.lists(st.integers(1, 4000), max_size=20),
)
def test_a_stream_split_anywhere_gives_what_the_whole_text_gives(
    words: list[str], cuts: list[int], byte_cuts: list[int]
) -> None:
    text = " ".join(words)
    r = redactor()
    pieces = split(text, cuts)
    [raw] = sse(pieces)
    # The transport may split the bytes anywhere too.
    chunks = [c.encode("latin-1") for c in split(raw.decode("latin-1"), byte_cuts)]
    out_text, events, out = streamed_text(r, chunks)
    assert out_text == r.text(text, Found(), block=False)
    assert events == len(pieces) + 1  # every event keeps its place
    assert out.endswith(b"data: [DONE]\n\n")


def test_a_card_split_across_events_is_masked() -> None:
    r = redactor()
    text, _, out = streamed_text(r, sse(["My card is 4111 11", "11 1111 ", "1111, thanks"]))
    assert text == "My card is [CARD], thanks"
    assert b"4111" not in out


def test_the_held_tail_is_bounded() -> None:
    r = redactor()
    stream = TextStream(r)
    sent = "".join(stream.push("word ", Found()) for _ in range(200))
    assert len("word " * 200) - len(sent) <= PII_WINDOW


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=300) | st.text(alphabet="0123456789 -.:+@()abcdefxAKIsk_", max_size=300))
def test_any_text_scans_to_ordered_disjoint_matches(text: str) -> None:
    last = 0
    for kind, start, end in scanner().scan(text):
        assert kind in PII_KINDS
        assert last <= start < end <= len(text)
        last = end


def test_events_that_are_not_openai_json_are_redacted_as_text() -> None:
    stream = StreamRedactor(redactor())
    raw = b"event: note\ndata: write to a@example.com\ndata: more\n\n: comment\n\ndata: [DONE]\n\n"
    out = stream.feed(raw) + stream.finish()
    assert out == raw.replace(b"a@example.com", b"[EMAIL]")


def test_other_strings_of_an_event_are_redacted_in_place() -> None:
    event = {
        "id": "x",
        "model": "mail-a@example.com",
        "choices": [
            {
                "index": 0,
                "delta": {"tool_calls": [{"function": {"arguments": '{"to":"b@example.com"}'}}]},
                "logprobs": {"content": [{"token": "c@example.com"}]},
                "finish_reason": None,
            }
        ],
    }
    raw = b"data: " + orjson.dumps(event) + b"\n\ndata: [DONE]\n\n"
    stream = StreamRedactor(redactor())
    out = stream.feed(raw) + stream.finish()
    assert b"@example.com" not in out
    assert stream.found.counts == {"email": 3}
    # JSON escapes (here: non-ASCII written as \\u) never hide a value.
    escaped = (
        b'data: {"choices":[{"index":0,"delta":{"content":"\\u00e94111 1111 1111 1111 ok"}}]}\n\n'
    )
    stream = StreamRedactor(redactor())
    out = stream.feed(escaped) + stream.finish()
    assert b"4111" not in out and stream.found.counts == {"card": 1}
