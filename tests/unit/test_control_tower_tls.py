"""TLS to the Control Tower: verified by default, trusted through --control-tower-ca.

A real HTTPS server on loopback with a certificate made for the test by the openssl CLI.
"""

import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
from aiohttp import web

from fd2.control.secrets import Secret
from fd2.control.sources.control_tower_client import ControlTowerClient, ControlTowerUnavailable
from fd2.serving.errors import ConfigError


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("the openssl CLI is needed to make a test certificate", pytrace=False)
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return cert, key


@pytest.fixture
async def https_url(certificate):
    cert, key = certificate

    async def manifest(request: web.Request) -> web.Response:
        return web.json_response({"project_id": request.match_info["project"], "modules": []})

    app = web.Application()
    app.router.add_get("/manifests/{project}", manifest)
    runner = web.AppRunner(app)
    await runner.setup()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # the port the OS chose
    yield f"https://127.0.0.1:{port}"
    await runner.cleanup()


async def test_an_untrusted_certificate_is_refused_by_default(https_url):
    client = ControlTowerClient(https_url, secret=Secret("s-1234"), retries=0)
    try:
        with pytest.raises(ControlTowerUnavailable, match="ConnectError"):
            await client.fetch("acme")
    finally:
        await client.aclose()


async def test_the_ca_bundle_option_trusts_the_certificate(https_url, certificate):
    cert, _ = certificate
    client = ControlTowerClient(https_url, secret=Secret("s-1234"), ca_bundle=str(cert))
    try:
        answer = await client.fetch("acme")
    finally:
        await client.aclose()
    assert answer.manifest is not None and answer.manifest.project_id == "acme"


def test_an_unreadable_ca_bundle_is_a_clear_start_up_error(tmp_path):
    with pytest.raises(ConfigError, match="--control-tower-ca"):
        ControlTowerClient("https://ct", secret=None, ca_bundle=str(tmp_path / "missing.pem"))
