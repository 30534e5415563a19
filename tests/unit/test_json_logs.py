"""`--log-format json`: one JSON object per line, with the request id and trace id."""

import io
import logging

import orjson
import pytest

from fd2.telemetry.log_context import REQUEST_ID, TRACE_ID, trace_id_from
from fd2.telemetry.logs import configure_logging, register_secret_value

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
def json_lines(monkeypatch: pytest.MonkeyPatch):
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    configure_logging("info", "json")
    yield lambda: [orjson.loads(line) for line in stream.getvalue().splitlines()]
    configure_logging("info")


def test_a_line_carries_the_request_and_trace_ids(json_lines):
    request = REQUEST_ID.set("req-1")
    trace = TRACE_ID.set(TRACE)
    try:
        logging.getLogger("fd2.app").info("upstream said %s", "no")
    finally:
        REQUEST_ID.reset(request)
        TRACE_ID.reset(trace)
    logging.getLogger("fd2.app").warning("between requests")
    first, second = json_lines()
    assert first["message"] == "upstream said no"
    assert (first["request_id"], first["trace_id"]) == ("req-1", TRACE)
    assert first["level"] == "INFO" and first["logger"] == "fd2.app"
    assert (second["request_id"], second["trace_id"]) == (None, None)


def test_secrets_and_stack_traces_stay_out(json_lines):
    register_secret_value("sk-json-test-secret")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("fd2.app").exception("key sk-json-test-secret failed")
    (line,) = json_lines()
    assert "sk-json-test-secret" not in line["message"]
    assert "Traceback" not in line["message"] and "[ValueError]" in line["message"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"00-{TRACE}-00f067aa0ba902b7-01".encode(), TRACE),
        (None, None),
        (b"00-" + b"0" * 32 + b"-00f067aa0ba902b7-01", None),  # the invalid all-zero id
        (f"ff-{TRACE}-00f067aa0ba902b7-01".encode(), None),  # version ff is invalid
        (b"00-not-hex", None),
        (f"00-{TRACE.upper()}-00f067aa0ba902b7-01".encode(), None),  # lowercase only
    ],
)
def test_the_trace_id_comes_from_a_valid_traceparent_only(header, expected):
    assert trace_id_from(header) == expected
