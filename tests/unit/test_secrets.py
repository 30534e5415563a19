import logging

import pytest

from fd2.control.secrets import Secret, SecretResolver, is_secret_reference
from fd2.serving.errors import SecretError
from fd2.telemetry.logs import configure_logging


def test_env_and_file_references_resolve(tmp_path):
    path = tmp_path / "key"
    path.write_text("file-value-123\n")
    resolver = SecretResolver(environ={"API_KEY": "env-value-123"})
    assert resolver.resolve("env:API_KEY").reveal() == "env-value-123"
    assert resolver.resolve(f"file:{path}").reveal() == "file-value-123"


def test_config_references_read_the_secrets_file(tmp_path):
    path = tmp_path / "secrets.json"
    path.write_text('{"upstream": {"openai": "cfg-secret-1"}}')
    resolver = SecretResolver(environ={}, config_file=path)
    assert resolver.resolve("config:upstream.openai").reveal() == "cfg-secret-1"
    with pytest.raises(SecretError, match="no such key"):
        resolver.resolve("config:upstream.other")


@pytest.mark.parametrize(
    ("reference", "fragment"),
    [
        ("env:MISSING_VAR", "is not set"),
        ("env:not a name", "names no valid variable"),
        ("file:/nonexistent/secret", "no such file"),
        ("vault:secret/data/acme#key", "no vault backend"),
        ("vault://secret/data/acme#key", "no vault backend"),
        ("encrypted:gAAAAB1234567890", "encrypted: values are not supported"),
        ("config:a.b", "no secrets file"),
        ("plain-text-value", "is not a secret reference"),
    ],
)
def test_unresolvable_references_fail_clearly(reference, fragment):
    with pytest.raises(SecretError) as info:
        SecretResolver(environ={}).resolve(reference)
    assert fragment in info.value.message
    assert info.value.status == 503


def test_a_non_reference_is_never_echoed_whole():
    with pytest.raises(SecretError) as info:
        SecretResolver(environ={}).resolve("sk-live-abcdefghijklmnop")
    assert "abcdefghijklmnop" not in info.value.message


def test_vault_backend_slot_is_used_when_configured():
    class Backend:
        def resolve(self, reference, locator):
            return f"from-backend:{locator}"

    resolver = SecretResolver(environ={}, backends={"vault": Backend()})
    assert resolver.resolve("vault:secret/data/x#k").reveal() == "from-backend:secret/data/x#k"


def test_secret_never_shows_its_value():
    secret = Secret("hunter2-very-secret", "env:PASSWORD")
    for text in (repr(secret), str(secret), f"{secret}", repr({"k": secret})):
        assert "hunter2" not in text
    assert "env:PASSWORD" in repr(secret)


def test_secret_values_are_redacted_from_log_lines(capfd):
    configure_logging("info")
    Secret("super-secret-value-42", "env:X")
    logging.getLogger("fd2.test").warning("upstream said: bad key super-secret-value-42!")
    err = capfd.readouterr().err
    assert "super-secret-value-42" not in err
    assert "bad key ***!" in err


def test_log_lines_carry_no_traceback(capfd):
    configure_logging("info")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("fd2.test").exception("handler failed")
    err = capfd.readouterr().err
    assert "handler failed" in err and "ValueError" in err
    assert "Traceback" not in err


def test_reference_detection():
    assert is_secret_reference("env:X")
    assert is_secret_reference("vault://a/data/b#c")
    assert not is_secret_reference("http://example")
    assert not is_secret_reference(42)


def test_a_scoped_resolver_adds_a_vault_backend_and_keeps_the_other_sources(tmp_path):
    class Backend:
        def resolve(self, reference, locator):
            return "vault-value-1234"

    secrets_file = tmp_path / "secrets.json"
    secrets_file.write_text('{"a": "cfg-value-1234"}')
    base = SecretResolver(environ={"K": "env-value-1234"}, config_file=secrets_file)
    scoped = base.with_backends({"vault": Backend()})
    secret = scoped.resolve("vault://secret/data/p#k")
    assert secret.reveal() == "vault-value-1234"
    assert repr(secret) == "Secret(vault://secret/data/p#k: ***)"
    assert scoped.resolve("env:K").reveal() == "env-value-1234"
    assert scoped.resolve("config:a").reveal() == "cfg-value-1234"
    with pytest.raises(SecretError, match="no vault backend"):
        base.resolve("vault://secret/data/p#k")
