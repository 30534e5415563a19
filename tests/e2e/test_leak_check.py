"""The leak check itself: it must find a planted secret, and only where fd2 could have leaked it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .leaks import LeakRegistry

HERE = Path(__file__).parent
SECRET = "planted-secret-4711"


def test_finds_a_secret_in_an_fd2_log_line(tmp_path: Path) -> None:
    registry = LeakRegistry()
    registry.add_secret(SECRET)
    log = tmp_path / "fd2.stderr.log"
    log.write_text(f"INFO fine\nERROR upstream refused key {SECRET}\n")
    registry.add_service("fd2", 1, [log])
    assert registry.findings() == ["fd2.stderr.log line 2: contains plan…"]


def test_finds_a_secret_in_an_fd2_answer_but_ignores_stand_ins(tmp_path: Path) -> None:
    registry = LeakRegistry()
    registry.add_secret(SECRET)
    registry.add_service("fd2-private", 1, [])
    registry.add_service("vault-standin", 2, [])
    registry.record(2, "GET /v1/secret/data/x", f'{{"data": {{"k": "{SECRET}"}}}}'.encode())
    assert registry.findings() == []
    registry.record(1, "POST /p/m/v1/chat/completions", f"error: bad key {SECRET}".encode())
    assert registry.findings() == [
        "fd2-private answer to POST /p/m/v1/chat/completions: contains plan…"
    ]


def test_a_port_taken_later_by_fd2_does_not_claim_a_stand_ins_earlier_answers() -> None:
    """Ports are reused over a session: a stand-in's answers stay the stand-in's."""
    registry = LeakRegistry()
    registry.add_secret(SECRET)
    registry.add_service("openai-standin", 7, [])
    registry.record(7, "GET /_standin/requests", f'"key": "{SECRET}"'.encode())
    registry.forget("openai-standin", 7)
    registry.add_service("fd2-later", 7, [])
    assert registry.findings() == []
    registry.record(7, "POST /p/m/v1/chat/completions", f"error: bad key {SECRET}".encode())
    assert registry.findings() == [
        "fd2-later answer to POST /p/m/v1/chat/completions: contains plan…"
    ]


def test_only_the_upstream_stand_ins_authorization_echo_is_exempt() -> None:
    registry = LeakRegistry()
    registry.add_secret(SECRET)
    registry.add_service("fd2", 1, [])
    registry.record(1, "echo", f'{{\\"authorization\\":\\"Bearer {SECRET}\\"}}'.encode())
    assert registry.findings() == []
    registry.record(1, "echo and more", f'"authorization":"Bearer {SECRET}" {SECRET}'.encode())
    assert len(registry.findings()) == 1


LEAKY_SERVER = """
import http.server, sys
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"key": "SECRET_VALUE"}' if self.path == "/leak" else b'{"status": "ok"}'
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
""".replace("SECRET_VALUE", SECRET)

LEAKY_TEST = """
import sys
from pathlib import Path
import httpx
from .conftest import free_port, start_service
from .leaks import LEAKS

def test_talks_to_a_server(tmp_path):
    LEAKS.add_secret("SECRET_VALUE")
    port = free_port()
    script = Path(__file__).with_name("leaky_server.py")
    server = start_service(
        "fd2-leaky", [sys.executable, str(script), str(port)],
        port=port, ready_path="/", log_dir=tmp_path,
    )
    try:
        CALL
    finally:
        server.stop()
""".replace("SECRET_VALUE", SECRET)

CALLS = {
    "httpx": 'httpx.get(f"http://127.0.0.1:{port}/PATH").raise_for_status()',
    # The OpenAI SDK carries its own HTTP client (httpx2 in openai 3.x): its answers count too.
    "openai": 'openai.OpenAI(api_key="k", base_url=f"http://127.0.0.1:{port}", max_retries=0)'
    '.get("/PATH", cast_to=object)',
}


@pytest.mark.parametrize("client", sorted(CALLS))
@pytest.mark.parametrize(("path", "leaks"), [("/leak", True), ("/fine", False)])
def test_a_session_whose_server_leaks_a_secret_fails(
    tmp_path: Path, path: str, leaks: bool, client: str
) -> None:
    """A whole pytest session with the e2e conftest: the answer leaks, so the session fails."""
    package = tmp_path / "e2e"
    package.mkdir()
    for name in ("__init__.py", "conftest.py", "leaks.py", "support.py", "vault_support.py"):
        shutil.copy(HERE / name, package / name)
    (package / "leaky_server.py").write_text(LEAKY_SERVER)
    test = LEAKY_TEST.replace("CALL", CALLS[client]).replace("/PATH", path)
    (package / "test_leaky.py").write_text("import openai\n" + test)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(package)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=90,
    )
    output = result.stdout + result.stderr
    assert "1 passed" in output, output
    if leaks:
        assert result.returncode == 1, output
        assert "test secrets leaked" in output
        assert "fd2-leaky answer to GET /leak: contains plan…" in output
    else:
        assert result.returncode == 0, output
        assert "test secrets leaked" not in output
