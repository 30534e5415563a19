"""VaultStore's cache rules, driven by a scripted session and a hand-moved clock."""

from __future__ import annotations

from typing import Any

import pytest

from fd2.control.vault.session import VaultFailure
from fd2.control.vault.settings import VaultSettings
from fd2.control.vault.store import VaultReadError, VaultStore, parse_vault_locator
from fd2.serving.errors import SecretError

REF = "vault:secret/data/acme/prod#api_key"


class ScriptedSession:
    """Stands in for VaultSession (hvac over HTTP is exercised by the e2e tests)."""

    def __init__(self) -> None:
        self.settings = VaultSettings(
            address="http://127.0.0.1:1", token_ref="env:T", secret_ttl_s=10
        )
        self.secrets: dict[tuple[str, str], dict[str, Any]] = {}
        self.failure: VaultFailure | None = None
        self.reads = 0

    def read(self, mount: str, path: str) -> tuple[dict[str, Any], int]:
        self.reads += 1
        if self.failure is not None:
            raise self.failure
        if (mount, path) not in self.secrets:
            raise VaultFailure("no such secret in Vault (404)", missing=True)
        return dict(self.secrets[(mount, path)]), 1


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def parts() -> tuple[VaultStore, ScriptedSession, Clock]:
    session = ScriptedSession()
    session.secrets[("secret", "acme/prod")] = {"api_key": "v1-value"}
    clock = Clock()
    return VaultStore(session, clock), session, clock  # type: ignore[arg-type]


def resolve(store: VaultStore, reference: str = REF) -> str:
    return store.resolve(reference, reference.partition(":")[2])


@pytest.mark.parametrize(
    ("locator", "expected"),
    [
        ("secret/data/acme/prod#k", ("secret", "acme/prod", "k")),
        ("//secret/data/acme/prod#k", ("secret", "acme/prod", "k")),
        ("kv/team/data/app/db#password", ("kv/team", "app/db", "password")),
    ],
)
def test_locators_parse(locator: str, expected: tuple[str, str, str]) -> None:
    assert parse_vault_locator("vault:" + locator, locator) == expected


@pytest.mark.parametrize(
    "locator", ["secret/acme#k", "secret/data/acme", "secret/data/#k", "/data/x#k"]
)
def test_malformed_locators_are_refused_naming_the_form(locator: str) -> None:
    with pytest.raises(SecretError, match="vault:<mount>/data/<path>#<key>"):
        parse_vault_locator("vault:" + locator, locator)


def test_a_fresh_entry_costs_no_vault_call(
    parts: tuple[VaultStore, ScriptedSession, Clock],
) -> None:
    store, session, clock = parts
    assert resolve(store) == "v1-value"
    clock.now += 9
    assert resolve(store) == "v1-value"
    assert session.reads == 1


def test_refresh_rereads_only_expired_entries_and_reports_changes(
    parts: tuple[VaultStore, ScriptedSession, Clock],
) -> None:
    store, session, clock = parts
    resolve(store)
    assert store.refresh() == set()
    assert session.reads == 1  # not expired yet
    clock.now += 10
    assert store.refresh() == set()  # reread, unchanged
    session.secrets[("secret", "acme/prod")] = {"api_key": "v2-value"}
    clock.now += 10
    assert store.refresh() == {"secret/data/acme/prod"}
    assert resolve(store) == "v2-value"


def test_a_known_secret_survives_a_vault_outage(
    parts: tuple[VaultStore, ScriptedSession, Clock],
) -> None:
    store, session, clock = parts
    resolve(store)
    session.failure = VaultFailure("Vault answered an error (VaultDown)")
    clock.now += 20
    assert store.refresh() == set()
    assert resolve(store) == "v1-value"


def test_an_unknown_secret_during_an_outage_fails_naming_the_reference(
    parts: tuple[VaultStore, ScriptedSession, Clock],
) -> None:
    store, session, _ = parts
    session.failure = VaultFailure("Vault is unreachable (ConnectionError)")
    with pytest.raises(VaultReadError) as info:
        resolve(store)
    assert REF in info.value.message and "unreachable" in info.value.message
    assert info.value.status == 503


def test_missing_secret_and_missing_key_are_told_apart(
    parts: tuple[VaultStore, ScriptedSession, Clock],
) -> None:
    store, _, _ = parts
    with pytest.raises(SecretError, match="no such secret") as info:
        resolve(store, "vault:secret/data/other#api_key")
    assert not isinstance(info.value, VaultReadError)  # Vault answered: not worth a quick retry
    with pytest.raises(SecretError, match="has no key 'nope'"):
        resolve(store, "vault:secret/data/acme/prod#nope")


def test_a_missing_secret_is_asked_again_only_after_the_ttl_and_its_arrival_is_a_change(
    parts: tuple[VaultStore, ScriptedSession, Clock],
) -> None:
    store, session, clock = parts
    other = "vault:secret/data/other#api_key"
    for _ in range(3):
        with pytest.raises(SecretError):
            resolve(store, other)
    assert session.reads == 1
    clock.now += 10
    assert store.refresh() == set()  # still absent
    session.secrets[("secret", "other")] = {"api_key": "arrived-value"}
    clock.now += 10
    assert store.refresh() == {"secret/data/other"}
    assert resolve(store, other) == "arrived-value"


def test_a_vault_outage_is_worth_a_retry_but_a_missing_credential_is_not(
    parts: tuple[VaultStore, ScriptedSession, Clock],
) -> None:
    store, session, _ = parts
    session.failure = VaultFailure("Vault is unreachable (ConnectionError)")
    with pytest.raises(VaultReadError):  # the builder retries projects that met this
        resolve(store)
    session.failure = VaultFailure("vault role_id: variable X is not set", retryable=False)
    with pytest.raises(SecretError) as caught:
        resolve(store)
    assert not isinstance(caught.value, VaultReadError)  # configuration: no rebuild loop
    assert "role_id" in caught.value.message
