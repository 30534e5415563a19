import json
from pathlib import Path

import pytest

from fd2.config import Settings
from fd2.control.vault.settings import VaultSettings, settings_from_fd2, settings_from_module_config
from fd2.serving.errors import ConfigError

ACME = Path(__file__).parents[2] / "examples" / "manifests" / "acme.json"


def acme_vault_config() -> dict:
    manifest = json.loads(ACME.read_text())
    return next(m for m in manifest["modules"] if m["module_type"] == "vault")["config"]


def test_the_reference_vault_module_gives_approle_settings() -> None:
    settings = settings_from_module_config(acme_vault_config(), default_ttl=60)
    assert settings.address == "http://127.0.0.1:8200"
    assert settings.auth_method == "approle"
    assert settings.role_id_ref == "env:ACME_VAULT_ROLE_ID"
    assert settings.secret_id_ref == "env:ACME_VAULT_SECRET_ID"
    assert settings.verify is False
    assert settings.secret_ttl_s == 300


def test_module_settings_carry_namespace_tls_and_default_ttl() -> None:
    config = {
        "vault_instances": [
            {
                "vault_url": "https://vault.internal:8200",
                "auth_method": "token",
                "token": "file:/run/secrets/vault-token",
                "namespace": "team-a",
                "ca_cert": "/etc/ssl/vault-ca.pem",
                "client_cert": "/etc/ssl/fd2.pem",
                "client_key": "/etc/ssl/fd2.key",
            }
        ]
    }
    settings = settings_from_module_config(config, default_ttl=42)
    assert settings.namespace == "team-a"
    assert settings.verify is True  # on unless switched off
    assert (settings.ca_bundle, settings.client_cert, settings.client_key) == (
        "/etc/ssl/vault-ca.pem",
        "/etc/ssl/fd2.pem",
        "/etc/ssl/fd2.key",
    )
    assert settings.secret_ttl_s == 42
    assert "file:" not in settings.describe() and "team-a" in settings.describe()


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({}, "no vault_instances"),
        ({"vault_instances": [{"auth_method": "token", "token": "env:T"}]}, "vault_url"),
        ({"vault_instances": [{"vault_url": "http://v", "auth_method": "ldap"}]}, "not supported"),
        ({"vault_instances": [{"vault_url": "http://v", "auth_method": "approle"}]}, "role_id"),
        ({"vault_instances": [{"vault_url": "http://v"}]}, "token reference"),
        ({"vault_instances": [{"vault_url": "vault.internal", "token": "env:T"}]}, "http"),
    ],
)
def test_unusable_vault_modules_are_refused_clearly(config: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        settings_from_module_config(config, default_ttl=60)


def test_fd2_settings_give_a_vault_only_with_an_address() -> None:
    assert settings_from_fd2(Settings()) is None
    settings = settings_from_fd2(
        Settings(
            vault_addr="https://vault:8200",
            vault_auth="approle",
            vault_role_id_ref="env:R",
            vault_secret_id_ref="file:/s",
            vault_namespace="ns1",
            vault_secret_ttl=30,
        )
    )
    assert settings == VaultSettings(
        address="https://vault:8200",
        auth_method="approle",
        role_id_ref="env:R",
        secret_id_ref="file:/s",
        namespace="ns1",
        secret_ttl_s=30,
    )
