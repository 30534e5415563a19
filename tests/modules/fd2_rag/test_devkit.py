"""The devkit's answers as fd2 relays them: OpenAI-shaped, refusals with their own words."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from fd2.serving.errors import Fd2Error, UpstreamError
from fd2.telemetry.scrub import Scrubber
from fd2_rag.devkit import DevkitService, ServiceRefused, refusal_message


@pytest.fixture
def service() -> DevkitService:
    # settle() reads only the label: no session or loop needed.
    item: Any = DevkitService.__new__(DevkitService)
    item._label = "RAG service"
    return item  # type: ignore[no-any-return]


def test_a_success_is_passed_on_as_sent(service: DevkitService) -> None:
    answer = service.settle(200, b'{"a": 1}', Scrubber(()))
    assert answer.body == b'{"a": 1}' and answer.value == {"a": 1}


def test_the_devkit_error_shape_keeps_status_and_words(service: DevkitService) -> None:
    body = orjson.dumps({"error": "Configuration 'x' not found", "detail": "d", "timestamp": "t"})
    with pytest.raises(ServiceRefused) as caught:
        service.settle(404, body, Scrubber(()))
    assert caught.value.status == 404
    assert (
        caught.value.message == "The RAG service refused the request: Configuration 'x' not found"
    )


def test_a_validation_error_is_a_400_naming_the_field(service: DevkitService) -> None:
    body = orjson.dumps(
        {"detail": [{"type": "x", "loc": ["body", "k"], "msg": "too big", "input": 99}] * 2}
    )
    with pytest.raises(ServiceRefused) as caught:
        service.settle(422, body, Scrubber(()))
    assert caught.value.status == 400 and caught.value.param == "k"
    assert caught.value.message.endswith("k: too big (and 1 more)")


def test_credentials_sent_are_taken_out_of_a_refusal(service: DevkitService) -> None:
    body = orjson.dumps({"detail": "Invalid token: Bearer eyJ.secret.sig"})
    with pytest.raises(ServiceRefused) as caught:
        service.settle(401, body, Scrubber(["eyJ.secret.sig"]))
    assert "eyJ.secret.sig" not in caught.value.message


@pytest.mark.parametrize(
    ("status", "body"),
    [(500, b'{"detail": "Traceback: /srv/app.py"}'), (200, b"<html>"), (503, b"")],
)
def test_failures_name_only_the_status(service: DevkitService, status: int, body: bytes) -> None:
    with pytest.raises(UpstreamError) as caught:
        service.settle(status, body, Scrubber(()))
    assert "Traceback" not in caught.value.message and "html" not in caught.value.message


def test_a_refusal_without_words(service: DevkitService) -> None:
    with pytest.raises(Fd2Error) as caught:
        service.settle(403, b"forbidden", Scrubber(()))
    assert caught.value.message == "The RAG service refused the request (HTTP 403)."


def test_refusal_message_reads_openai_errors_too() -> None:
    assert refusal_message(b'{"error": {"message": "no"}}') == ("no", None)
    assert refusal_message(b'{"detail": "' + b"x" * 900 + b'"}')[0].endswith("…")  # type: ignore[union-attr]
    assert refusal_message(b"[1]") == (None, None)
