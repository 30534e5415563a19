"""`fd2 serve --log-format json`: every line a JSON object; a request's lines carry its request
id and the trace id of the client's `traceparent`."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson

from .conftest import Service, build_manifest_dir
from .hardening import start_fd2_with, wait_for
from .support import chat_body

TRACE = "0af7651916cd43dd8448eb211c80319c"


def test_json_log_lines_name_the_request_and_its_trace(tmp_path: Path, standin: Service) -> None:
    manifests = build_manifest_dir(tmp_path / "manifests", standin.address)
    server = start_fd2_with(
        manifests, tmp_path, "--log-format", "json", "--access-log", name="fd2-json-logs"
    )
    try:
        answer = httpx.post(
            server.url + "/acme/chat/v1/chat/completions",
            content=chat_body(),
            headers={
                "content-type": "application/json",
                "x-request-id": "json-log-request",
                "traceparent": f"00-{TRACE}-b7ad6b7169203331-01",
            },
            timeout=10,
        )
        assert answer.status_code == 200

        def access_line() -> dict[str, object] | None:
            for line in server.stderr_path.read_text().splitlines():
                record = orjson.loads(line)  # every line is JSON
                if record["logger"] == "fd2.access" and record["request_id"] == "json-log-request":
                    return record  # type: ignore[no-any-return]
            return None

        assert wait_for(lambda: access_line() is not None, timeout=5), server.output()
        record = access_line()
        assert record is not None
        assert record["trace_id"] == TRACE
        assert "json-log-request POST /acme/chat/v1/chat/completions 200" in str(record["message"])
    finally:
        server.stop()
