"""`fd2 serve --otel-endpoint`: spans reach an OTLP/HTTP collector, the client's trace is
continued, and the upstream receives a `traceparent` of the same trace."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from .conftest import Service, build_manifest_dir
from .hardening import start_fd2_with, wait_for
from .support import chat_body

TRACE = "0af7651916cd43dd8448eb211c80319c"
CLIENT_SPAN = "b7ad6b7169203331"


class Collector:
    """An OTLP/HTTP traces receiver on a real socket: keeps every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[object] = []
        collector = self

        class Receive(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                export = ExportTraceServiceRequest.FromString(body)
                for resource in export.resource_spans:
                    for scope in resource.scope_spans:
                        collector.spans.extend(scope.spans)
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Receive)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def collector() -> Iterator[Collector]:
    receiver = Collector()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


def test_a_request_is_traced_to_the_collector_and_upstream(
    tmp_path: Path, standin: Service, collector: Collector
) -> None:
    manifests = build_manifest_dir(tmp_path / "manifests", standin.address)
    server = start_fd2_with(
        manifests, tmp_path, "--otel-endpoint", collector.url, name="fd2-tracing"
    )
    try:
        answer = httpx.post(
            server.url + "/acme/chat/v1/chat/completions",
            content=chat_body(content="traced"),
            headers={
                "content-type": "application/json",
                "traceparent": f"00-{TRACE}-{CLIENT_SPAN}-01",
            },
            timeout=10,
        )
        assert answer.status_code == 200
        recent = httpx.get(f"http://{standin.address}/_standin/requests", timeout=5).json()
        carried = [
            entry["headers"].get("traceparent")
            for entry in recent
            if entry["path"].endswith("/chat/completions")
        ]
        assert any(value and value.split("-")[1] == TRACE for value in carried), carried
    finally:
        server.stop()  # a worker that stops sends the spans it still holds
    assert wait_for(lambda: len(collector.spans) >= 2, timeout=10), server.output()
    by_name = {span.name: span for span in collector.spans}  # type: ignore[attr-defined]
    request = by_name["acme/chat /v1/chat/completions"]
    assert request.trace_id.hex() == TRACE
    assert request.parent_span_id.hex() == CLIENT_SPAN
    attributes = {item.key: item.value for item in request.attributes}
    assert attributes["fd2.project"].string_value == "acme"
    assert attributes["http.response.status_code"].int_value == 200
    upstream = by_name["upstream POST"]
    assert upstream.trace_id.hex() == TRACE
    assert upstream.parent_span_id == request.span_id
