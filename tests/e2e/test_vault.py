"""fd2 reading `vault:` secret references from a Vault stand-in (real socket, hvac unmodified)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from .conftest import Service
from .support import assert_openai_error, chat_body, raw_request, wait_until
from .vault_support import VaultControl, start_fd2_with, unique, write_manifest

MESSAGES = [{"role": "user", "content": "hello"}]


def project_manifest(
    project: str, upstream: str, vault_url: str, api_key_ref: str, *, ttl: float = 300
) -> dict[str, Any]:
    """A Control Tower project manifest whose `vault` module says where Vault is (AppRole)."""
    return {
        "project_id": project,
        "environment": "development",
        "environments": {
            "development": {
                "urls": {"llm": f"http://{upstream}/v1"},
                "secrets": {"upstream_api_key": api_key_ref},
            }
        },
        "modules": [
            {
                "module_type": "vault",
                "name": "vault-manager",
                "config": {
                    "vault_instances": [
                        {
                            "instance_name": "main",
                            "vault_url": vault_url,
                            "auth_method": "approle",
                            "role_id": "env:E2E_VAULT_ROLE_ID",
                            "secret_id": "env:E2E_VAULT_SECRET_ID",
                            "kv_mount_point": "secret",
                            "kv_version": 2,
                            "verify_ssl": False,
                        }
                    ],
                    "cache_secrets": True,
                    "cache_ttl": ttl,
                },
            },
            {
                "module_type": "inference_endpoint",
                "name": "chat",
                "config": {
                    "model_name": "standin-echo",
                    "endpoint_url": "${environments.${environment}.urls.llm}/chat/completions",
                    "api_key": "${environments.${environment}.secrets.upstream_api_key}",
                },
            },
            {
                "module_type": "inference_endpoint",
                "name": "plain",
                "config": {
                    "model_name": "standin-echo",
                    "endpoint_url": "${environments.${environment}.urls.llm}/chat/completions",
                    "api_key": "env:ACME_UPSTREAM_API_KEY",
                },
            },
        ],
    }


class VaultProject:
    """One test's project: its Vault paths, AppRole and fd2 (stopped at teardown)."""

    def __init__(self, vault: VaultControl, upstream: Service, tmp_path: Path) -> None:
        self.vault = vault
        self.upstream = upstream
        self.tmp_path = tmp_path
        self.project = unique("vp")
        self.path = f"e2e/{self.project}"
        self.reference = f"vault:secret/data/{self.path}#api_key"
        self.role_id = unique("role")
        self.secret_id = unique("approle-secret-id")
        self.fd2: Service | None = None
        self.clients: list[openai.OpenAI] = []

    def start(self, *, approle_ttl: int = 600, max_ttl: int = 0, cache_ttl: float = 300) -> Service:
        self.vault.add_approle(self.role_id, self.secret_id, approle_ttl, max_ttl)
        manifests = self.tmp_path / "manifests"
        manifest = project_manifest(
            self.project, self.upstream.address, self.vault.url, self.reference, ttl=cache_ttl
        )
        write_manifest(manifests, f"{self.project}.json", manifest)
        logs = self.tmp_path / "logs"
        logs.mkdir(exist_ok=True)
        self.fd2 = start_fd2_with(
            manifests,
            logs,
            env={"E2E_VAULT_ROLE_ID": self.role_id, "E2E_VAULT_SECRET_ID": self.secret_id},
        )
        return self.fd2

    def client(self, module: str = "chat") -> openai.OpenAI:
        assert self.fd2 is not None
        sdk = openai.OpenAI(
            base_url=f"{self.fd2.url}/{self.project}/{module}/v1",
            api_key="unused",
            max_retries=0,
            timeout=30.0,
        )
        self.clients.append(sdk)
        return sdk

    def upstream_saw(self, module: str = "chat") -> str | None:
        """The Authorization header the upstream received for one chat completion."""
        answer = self.client(module).chat.completions.create(
            model="standin-echo", messages=MESSAGES
        )
        content = answer.choices[0].message.content
        assert content is not None
        authorization: str | None = json.loads(content)["authorization"]
        return authorization

    def stop(self) -> None:
        for sdk in self.clients:
            sdk.close()
        if self.fd2 is not None:
            self.fd2.stop()


@pytest.fixture
def vault_project(vault: VaultControl, standin: Service, tmp_path: Path) -> Iterator[VaultProject]:
    project = VaultProject(vault, standin, tmp_path)
    yield project
    project.stop()


def test_api_key_from_vault_reaches_the_upstream_and_vault_is_not_called_per_request(
    vault_project: VaultProject, vault: VaultControl
) -> None:
    key = unique("vault-upstream-key")
    vault.put_secret("secret", vault_project.path, {"api_key": key})
    vault_project.start()
    reads_after_load = vault.stats().get("read", 0)
    for _ in range(10):
        assert vault_project.upstream_saw() == f"Bearer {key}"
    # Resolved once at module load and cached: ten requests cost Vault nothing.
    assert vault.stats().get("read", 0) == reads_after_load


def test_a_secret_rotated_in_vault_is_used_after_the_ttl(
    vault_project: VaultProject, vault: VaultControl
) -> None:
    first, second = unique("rotate-key-one"), unique("rotate-key-two")
    vault.put_secret("secret", vault_project.path, {"api_key": first})
    vault_project.start(cache_ttl=1)
    assert vault_project.upstream_saw() == f"Bearer {first}"
    vault.put_secret("secret", vault_project.path, {"api_key": second})
    wait_until(
        lambda: vault_project.upstream_saw() == f"Bearer {second}",
        timeout=15,
        interval=0.2,
        what="the rotated key to reach the upstream",
    )


def test_expiring_tokens_are_renewed_then_replaced_by_a_new_login(
    vault_project: VaultProject, vault: VaultControl
) -> None:
    key = unique("relogin-key")
    vault.put_secret("secret", vault_project.path, {"api_key": key})
    renewals_before = vault.stats().get("renew", 0)
    vault_project.start(approle_ttl=2, max_ttl=3, cache_ttl=1)
    logins_at_start = vault.stats().get("login", 0)
    # Tokens live 2 s, renewable up to 3 s: fd2 must renew its token, and log in again once it
    # cannot be renewed any more, again and again.
    wait_until(
        lambda: vault.stats().get("login", 0) >= logins_at_start + 2,
        timeout=15,
        what="fd2 to log in again as its tokens reach their maximum TTL",
    )
    assert vault.stats().get("renew", 0) > renewals_before
    assert vault_project.upstream_saw() == f"Bearer {key}"


def test_a_revoked_token_is_refused_and_fd2_logs_in_again(
    vault_project: VaultProject, vault: VaultControl
) -> None:
    key = unique("revoke-key")
    vault.put_secret("secret", vault_project.path, {"api_key": key})
    vault_project.start(approle_ttl=600, cache_ttl=1)  # no renewal is due during this test
    assert vault_project.upstream_saw() == f"Bearer {key}"
    refused_before = vault.stats().get("read_refused", 0)
    logins_before = vault.stats().get("login", 0)
    vault.revoke_all()
    rotated = unique("revoke-key-rotated")
    vault.put_secret("secret", vault_project.path, {"api_key": rotated})
    # The next reread meets 403 with the revoked token; one fresh login, and it reads again.
    wait_until(
        lambda: vault_project.upstream_saw() == f"Bearer {rotated}",
        timeout=15,
        interval=0.2,
        what="a fresh login after the tokens were revoked",
    )
    assert vault.stats().get("read_refused", 0) > refused_before
    assert vault.stats().get("login", 0) > logins_before


def test_vault_down_at_load_gives_503_naming_the_reference_and_recovers(
    vault_project: VaultProject, vault: VaultControl
) -> None:
    key = unique("down-at-load-key")
    vault.put_secret("secret", vault_project.path, {"api_key": key})
    vault.fail(503)
    fd2 = vault_project.start(cache_ttl=1)
    answer = raw_request(
        fd2.port,
        "POST",
        f"/{vault_project.project}/chat/v1/chat/completions".encode(),
        [(b"content-type", b"application/json")],
        chat_body(),
    )
    assert answer.status == 503
    error = assert_openai_error(answer.body, status=503)
    assert vault_project.reference in error["message"]
    assert key.encode() not in answer.body
    # The project's other module does not need Vault and serves.
    assert vault_project.upstream_saw("plain") == "Bearer test-acme-key"
    vault.fail(0)
    wait_until(
        lambda: _chat_status(fd2, vault_project.project) == 200,
        timeout=15,
        interval=0.2,
        what="the module to load once Vault answers again",
    )
    assert vault_project.upstream_saw() == f"Bearer {key}"


def _chat_status(fd2: Service, project: str) -> int:
    with httpx.Client(timeout=10) as client:
        return client.post(
            f"{fd2.url}/{project}/chat/v1/chat/completions",
            json={"model": "standin-echo", "messages": MESSAGES},
        ).status_code


def module_manifest(
    project: str, upstream: str, references: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "project": project,
        "module": "assistant",
        "module_type": "inference_openai",
        "runtime": {
            "type": "python:3.11",
            "implementation": "fd2_inference.InferenceModule",
        },
        "endpoints": {"dev": {"primary": f"http://{upstream}/v1"}},
        "configuration_references": references,
        "default_environment": "dev",
    }


@pytest.fixture
def fd2_own_vault(
    vault: VaultControl, standin: Service, tmp_path: Path
) -> Iterator[Callable[..., Service]]:
    """fd2 whose own settings (FD2_VAULT_*) point at the stand-in: token auth, a namespace."""
    started: list[Service] = []

    def start(manifest: dict[str, Any], token_ttl: int = 0) -> Service:
        token = unique("hvs-static-token")
        vault.add_token(token, token_ttl, renewable=token_ttl > 0)
        token_file = tmp_path / "vault-token"
        token_file.write_text(token + "\n")
        manifests = tmp_path / "manifests"
        write_manifest(manifests, "own.module.json", manifest)
        logs = tmp_path / "logs"
        logs.mkdir(exist_ok=True)
        service = start_fd2_with(
            manifests,
            logs,
            env={
                "FD2_VAULT_ADDR": vault.url,
                "FD2_VAULT_AUTH": "token",
                "FD2_VAULT_TOKEN_REF": f"file:{token_file}",
                "FD2_VAULT_NAMESPACE": "team-a",
                "FD2_VAULT_SECRET_TTL": "1",
            },
        )
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()


def test_fd2_own_vault_settings_with_token_auth_and_a_namespace(
    fd2_own_vault: Callable[..., Service], vault: VaultControl, standin: Service
) -> None:
    project = unique("own")
    path = f"e2e/{project}"
    in_namespace, outside = unique("ns-key"), unique("root-ns-key")
    vault.put_secret("secret", path, {"api_key": in_namespace}, namespace="team-a")
    vault.put_secret("secret", path, {"api_key": outside})
    references = [
        {"name": "api_key", "source": f"vault://secret/data/{path}#api_key", "required": True},
        # Optional and absent from Vault: the module serves without it.
        {"name": "org_header", "source": f"vault:secret/data/{path}/none#org", "required": False},
    ]
    fd2 = fd2_own_vault(module_manifest(project, standin.address, references))
    with openai.OpenAI(
        base_url=f"{fd2.url}/{project}/assistant/v1", api_key="unused", max_retries=0
    ) as sdk:
        answer = sdk.chat.completions.create(model="standin-echo", messages=MESSAGES)
    content = answer.choices[0].message.content
    assert content is not None
    assert json.loads(content)["authorization"] == f"Bearer {in_namespace}"


def test_a_renewable_token_is_renewed_before_it_expires(
    fd2_own_vault: Callable[..., Service], vault: VaultControl, standin: Service
) -> None:
    project = unique("renew")
    path = f"e2e/{project}"
    first, second = unique("renew-key-one"), unique("renew-key-two")
    vault.put_secret("secret", path, {"api_key": first}, namespace="team-a")
    references = [{"name": "api_key", "source": f"vault:secret/data/{path}#api_key"}]
    manifest = module_manifest(project, standin.address, references)
    fd2 = fd2_own_vault(manifest, token_ttl=3)
    renewals_at_start = vault.stats().get("renew", 0)
    logins_at_start = vault.stats().get("lookup", 0)  # a static token's login is a lookup-self
    # Past the token's first 3 s: only renewals (its file holds no other token) keep it valid.
    wait_until(
        lambda: vault.stats().get("renew", 0) >= renewals_at_start + 3,
        timeout=15,
        what="fd2 to renew its token",
    )
    vault.put_secret("secret", path, {"api_key": second}, namespace="team-a")
    with openai.OpenAI(
        base_url=f"{fd2.url}/{project}/assistant/v1", api_key="unused", max_retries=0
    ) as sdk:

        def upstream_saw_second() -> bool:
            answer = sdk.chat.completions.create(model="standin-echo", messages=MESSAGES)
            content = answer.choices[0].message.content
            assert content is not None
            return bool(json.loads(content)["authorization"] == f"Bearer {second}")

        wait_until(upstream_saw_second, timeout=15, interval=0.2, what="the rotated key")
    assert vault.stats().get("lookup", 0) == logins_at_start  # renewed, never refused
