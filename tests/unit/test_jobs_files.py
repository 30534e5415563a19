"""Batch input files: the upload's multipart form, and each line's checks."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from fd2.jobs.batches import output_line
from fd2.jobs.files import check_batch_input, parse_upload
from fd2.serving.errors import BadRequest

ENDPOINTS = frozenset({"/v1/chat/completions"})


def _line(custom_id: str = "a", **changes: Any) -> dict[str, Any]:
    line = {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": {}}
    line.update(changes)
    return line


def _file(*lines: dict[str, Any] | str) -> bytes:
    return "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines).encode()


def test_an_upload_is_read_from_the_form_the_sdk_sends() -> None:
    request = httpx.Request(
        "POST",
        "http://x/v1/files",
        data={"purpose": "batch"},
        files={"file": ("in.jsonl", b'{"a": 1}\n', "application/jsonl")},
    )
    fields, name, content = parse_upload(request.headers["content-type"].encode(), request.read())
    assert fields == {"purpose": "batch"}
    assert (name, content) == ("in.jsonl", b'{"a": 1}\n')


def test_an_upload_without_a_file_or_form_is_refused() -> None:
    with pytest.raises(BadRequest):
        parse_upload(b"application/json", b"{}")
    request = httpx.Request("POST", "http://x/", data={"purpose": "batch"}, files={"other": b"x"})
    with pytest.raises(BadRequest, match="no file"):
        parse_upload(request.headers["content-type"].encode(), request.read())


def test_good_lines_pass_and_blank_lines_are_skipped() -> None:
    content = _file(_line("a"), "", _line("b"))
    assert [item["custom_id"] for item in check_batch_input(content, ENDPOINTS, 10)] == ["a", "b"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (_file("nope"), "line 1: not a JSON object"),
        (_file("[1]"), "not a JSON object"),
        (_file(_line(""), _line("b")), "custom_id"),
        (_file(_line("a"), _line("a")), "used twice"),
        (_file(_line(method="GET")), "method"),
        (_file(_line(url="/v1/embeddings")), "url"),
        (_file(_line(body=[])), "body"),
        (_file(_line(body={"stream": True})), "stream"),
        (b"", "no requests"),
        (_file(*[_line(str(n)) for n in range(4)]), "more than 3"),
    ],
)
def test_bad_lines_are_refused_naming_the_line(content: bytes, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        check_batch_input(content, ENDPOINTS, 3)


def test_output_lines_have_openais_shape() -> None:
    ok = {
        "id": "job_1",
        "custom_id": "a",
        "status": "succeeded",
        "result": json.dumps({"status_code": 200, "body": {"x": 1}}),
    }
    line, good = output_line(ok)
    assert good
    assert json.loads(line) == {
        "id": "batch_req_job_1",
        "custom_id": "a",
        "response": {"status_code": 200, "request_id": "job_1", "body": {"x": 1}},
        "error": None,
    }
    failed = {
        "id": "job_2",
        "custom_id": "b",
        "status": "failed",
        "error": json.dumps({"status_code": 400, "message": "no", "type": "invalid_request_error"}),
    }
    line, good = output_line(failed)
    assert not good
    assert json.loads(line)["response"]["body"] == {
        "error": {"message": "no", "type": "invalid_request_error"}
    }
    cancelled = {"id": "job_3", "custom_id": "c", "status": "cancelled"}
    line, good = output_line(cancelled)
    assert json.loads(line)["error"]["code"] == "batch_cancelled"
