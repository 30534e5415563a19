"""Secrets and environment for fd2 check/routes (python/fd2/control/offline_secrets.py):
references are checked and stand in for themselves; nothing is read."""

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from fd2.auth.jwe import content_key
from fd2.control.offline_secrets import UNSET_STAND_IN, OfflineSecrets, PlaceholderEnviron
from fd2.control.secrets import SecretResolver
from fd2.serving.errors import SecretError


def test_a_reference_stands_in_for_itself_without_being_read(tmp_path):
    secret_file = tmp_path / "key"
    secret_file.write_text("the-real-value")
    secrets = OfflineSecrets(environ={"KEY": "the-env-value"})
    for reference in ("env:KEY", f"file:{secret_file}", "config:a.b", "vault:kv/data/app#k"):
        secret = secrets.resolve(reference)
        assert secret.reference == reference
        assert secret.reveal() not in ("the-real-value", "the-env-value")
        assert secret.reveal() == secrets.resolve(reference).reveal()  # deterministic
    assert secrets.references == {
        "env:KEY",
        f"file:{secret_file}",
        "config:a.b",
        "vault:kv/data/app#k",
    }


def test_text_stand_ins_fit_token_secrets_and_32_byte_keys():
    value = OfflineSecrets(environ={}).resolve("env:JWE_KEY").reveal()
    assert len(content_key(value)) == 32


def test_pem_stand_ins_are_public_keys():
    value = OfflineSecrets(shape="pem", environ={}).resolve("file:/etc/jwt.pem").reveal()
    load_pem_public_key(value.encode())


def test_env_presence_is_checked_only_when_asked():
    assert OfflineSecrets(environ={}).resolve("env:ABSENT")
    with pytest.raises(SecretError, match="variable ABSENT is not set"):
        OfflineSecrets(check_env=True, environ={}).resolve("env:ABSENT")
    assert OfflineSecrets(check_env=True, environ={"HERE": ""}).resolve("env:HERE")


def test_no_backend_is_ever_called():
    secrets = OfflineSecrets(environ={})
    assert secrets.with_backends({"vault": object()}) is secrets  # type: ignore[dict-item]
    assert isinstance(secrets, SecretResolver)


def test_placeholder_environment():
    environ = PlaceholderEnviron(check_env=False, environ={"SET": "value"})
    assert environ.get("SET") == "value"
    assert environ.get("UNSET") == UNSET_STAND_IN
    assert environ.unset == {"UNSET"}
    strict = PlaceholderEnviron(check_env=True, environ={"SET": "value"})
    assert strict.get("UNSET") is None and "UNSET" not in strict
    assert strict.unset == {"UNSET"}
