"""The stored Bedrock transcripts are exactly what bedrock_transcripts.py builds (the readable
source of their binary event streams), and every stream in them decodes cleanly (the cut one
ends inside a message)."""

from __future__ import annotations

import base64
import json

from fd2._native import EventStreamDecoder

from .bedrock_transcripts import DIRECTORY, rendered


def test_stored_transcripts_are_the_generated_ones() -> None:
    expected = rendered()
    stored = {path.name: path.read_text() for path in DIRECTORY.glob("*.json")}
    assert sorted(stored) == sorted(expected)
    for name, text in expected.items():
        assert stored[name] == text, f"{name} differs: regenerate (see bedrock_transcripts.py)"


def test_streams_decode_and_only_the_cut_one_ends_early() -> None:
    for path in DIRECTORY.glob("*.json"):
        response = json.loads(path.read_text()).get("response", {})
        if "body_b64" not in response:
            continue
        decoder = EventStreamDecoder()
        messages = decoder.feed(base64.b64decode(response["body_b64"]))
        assert messages, path.name
        assert all(headers[":message-type"] == "event" for headers, _ in messages)
        assert (decoder.finish() > 0) == bool(response.get("cut")), path.name
