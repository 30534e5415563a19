"""A webhook receiver stand-in: records every delivery (headers and body) and answers with a
status a test chooses.

Run it with ``python tests/standins/webhook_receiver.py --port 9200 [--fail-first N]
[--status 500]``: the first N deliveries get ``--status``, later ones 204. ``GET /_received``
lists what arrived (newest last; the body base64-encoded); ``POST /_reset`` forgets it.
"""

from __future__ import annotations

import argparse
import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_received: list[dict[str, Any]] = []
_lock = threading.Lock()
_settings = {"fail_first": 0, "status": 500}


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        if self.path != "/_received":
            self._answer(404, b"{}")
            return
        with _lock:
            body = json.dumps(_received).encode()
        self._answer(200, body)

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        if self.path == "/_reset":
            with _lock:
                _received.clear()
            self._answer(200, b"{}")
            return
        with _lock:
            _received.append(
                {
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": base64.b64encode(body).decode(),
                }
            )
            failing = len(_received) <= _settings["fail_first"]
        self._answer(_settings["status"] if failing else 204, b"")

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--status", type=int, default=500)
    args = parser.parse_args()
    _settings.update(fail_first=args.fail_first, status=args.status)
    ThreadingHTTPServer((args.host, args.port), _Handler).serve_forever()


if __name__ == "__main__":
    main()
