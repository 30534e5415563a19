"""Which secret references a project's build used, so a change in Vault rebuilds just its users."""

from __future__ import annotations

from fd2.control.secrets import ResolvesSecrets, Secret
from fd2.control.vault.store import VaultReadError, parse_vault_locator, secret_path
from fd2.serving.errors import SecretError


class SecretUsage:
    """Wraps a resolver; records the Vault secrets it read and whether a Vault read failed."""

    def __init__(self, resolver: ResolvesSecrets) -> None:
        self._resolver = resolver
        self.vault_paths: set[str] = set()
        self.vault_failed = False

    def resolve(self, reference: str) -> Secret:
        path = _vault_path(reference)
        if path is not None:
            # Recorded even when the read fails: a key added later is a change to rebuild for.
            self.vault_paths.add(path)
        try:
            return self._resolver.resolve(reference)
        except VaultReadError:
            self.vault_failed = True  # Vault failed (not the reference): worth another try
            raise

    def merge(self, other: SecretUsage) -> None:
        self.vault_paths |= other.vault_paths
        self.vault_failed |= other.vault_failed


def _vault_path(reference: str) -> str | None:
    if not reference.startswith("vault:"):
        return None
    try:
        mount, path, _ = parse_vault_locator(reference, reference.removeprefix("vault:"))
    except SecretError:
        return None
    return secret_path(mount, path)
