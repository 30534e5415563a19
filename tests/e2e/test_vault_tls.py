"""fd2's Vault session over HTTPS: verification on by default, a CA bundle, a client certificate.

The Vault stand-in serves TLS with a certificate from a test CA made here with openssl, and
requires client certificates; hvac (through fd2's VaultSession) talks to it over a real socket.
"""

from __future__ import annotations

import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from fd2.control.secrets import SecretResolver
from fd2.control.vault.session import VaultFailure, VaultSession
from fd2.control.vault.settings import VaultSettings

from .conftest import Service, free_port
from .leaks import LEAKS
from .vault_support import VAULT_SCRIPT

TOKEN = "hvs-tls-test-token"
SECRET_VALUE = "tls-secret-value-9931"


@dataclass
class Pki:
    ca: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _issue(directory: Path, name: str, extensions: str) -> None:
    (directory / f"{name}.ext").write_text(extensions)
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
        "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=directory,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", f"{name}.pem", "-days", "1", "-extfile", f"{name}.ext",
        cwd=directory,
    )  # fmt: skip


@pytest.fixture(scope="module")
def tls_vault(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, Pki]]:
    directory = tmp_path_factory.mktemp("pki")
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "1", "-subj", "/CN=fd2-test-ca", cwd=directory,
    )  # fmt: skip
    _issue(directory, "server", "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    _issue(directory, "client", "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n")
    port = free_port()
    argv = [
        sys.executable, str(VAULT_SCRIPT), "--host", "127.0.0.1", "--port", str(port),
        "--tls-cert", str(directory / "server.pem"), "--tls-key", str(directory / "server.key"),
        "--tls-client-ca", str(directory / "ca.pem"),
    ]  # fmt: skip
    logs = tmp_path_factory.mktemp("tls-vault-logs")
    pki = Pki(directory / "ca.pem", directory / "client.pem", directory / "client.key")
    service = _start_tls(argv, port, logs, pki)
    try:
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=_context(pki)) as control:
            LEAKS.add_secret(SECRET_VALUE)
            LEAKS.add_secret(TOKEN)
            control.post("/_vault/token", json={"token": TOKEN}).raise_for_status()
            control.post(
                "/_vault/secret",
                json={"mount": "secret", "path": "tls/app", "data": {"k": SECRET_VALUE}},
            ).raise_for_status()
        yield service, pki
    finally:
        service.stop()


def _context(pki: Pki) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca))
    context.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    return context


def _start_tls(argv: list[str], port: int, logs: Path, pki: Pki) -> Service:
    # start_service probes readiness with plain HTTP; a TLS server refuses that, so probe here.
    stdout, stderr = logs / "vault-tls.stdout.log", logs / "vault-tls.stderr.log"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, start_new_session=True)
    service = Service("vault-tls-standin", proc, port, stdout, stderr)
    LEAKS.add_service(service.name, port, [stdout, stderr])
    with httpx.Client(verify=_context(pki), timeout=1.0) as client:
        for _ in range(300):
            if proc.poll() is not None:
                pytest.fail(f"the TLS Vault stand-in exited\n{service.output()}", pytrace=False)
            try:
                if client.get(f"https://127.0.0.1:{port}/_vault/stats").status_code == 200:
                    return service
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
    service.stop()
    pytest.fail(f"the TLS Vault stand-in never answered\n{service.output()}", pytrace=False)


def session(service: Service, **tls: object) -> VaultSession:
    settings = VaultSettings(
        address=f"https://127.0.0.1:{service.port}",
        token_ref="env:TLS_VAULT_TOKEN",
        timeout_s=5,
        **tls,  # type: ignore[arg-type]
    )
    return VaultSession(settings, SecretResolver(environ={"TLS_VAULT_TOKEN": TOKEN}))


def read_with(service: Service, **tls: object) -> str:
    vault = session(service, **tls)
    try:
        data, _ = vault.read("secret", "tls/app")
        return str(data["k"])
    finally:
        vault.close()


def test_verification_is_on_by_default_and_refuses_an_unknown_ca(
    tls_vault: tuple[Service, Pki],
) -> None:
    service, pki = tls_vault
    with pytest.raises(VaultFailure) as info:
        read_with(service, client_cert=str(pki.client_cert), client_key=str(pki.client_key))
    assert "SSLError" in info.value.reason


def test_a_ca_bundle_and_a_client_certificate_read_the_secret(
    tls_vault: tuple[Service, Pki],
) -> None:
    service, pki = tls_vault
    value = read_with(
        service,
        ca_bundle=str(pki.ca),
        client_cert=str(pki.client_cert),
        client_key=str(pki.client_key),
    )
    assert value == SECRET_VALUE


def test_without_a_client_certificate_the_server_refuses(tls_vault: tuple[Service, Pki]) -> None:
    service, pki = tls_vault
    with pytest.raises(VaultFailure, match="unreachable"):
        read_with(service, ca_bundle=str(pki.ca))


def test_verification_can_be_switched_off(tls_vault: tuple[Service, Pki]) -> None:
    service, pki = tls_vault
    value = read_with(
        service, verify=False, client_cert=str(pki.client_cert), client_key=str(pki.client_key)
    )
    assert value == SECRET_VALUE
