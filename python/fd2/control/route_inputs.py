"""What building one project's routes needs beyond each module's own entry: its dependency graph,
the Vault its `vault:` references go to, and a record of the secrets it used.

`resolve` blocks (file reads, Vault calls through hvac): the builder runs it in a worker thread.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from fd2.control.dependencies import dependency_names, dependency_problems
from fd2.control.manifests.compile import (
    ModuleDeclaration,
    ResolvedModule,
    declaration_context,
    resolve_declaration,
    resolve_dependency,
)
from fd2.control.manifests.models import SERVED_STATUSES
from fd2.control.manifests.placeholders import PlaceholderContext, resolve_value
from fd2.control.secret_usage import SecretUsage
from fd2.control.secrets import SecretBackend, SecretResolver
from fd2.control.vault.pool import VaultPool
from fd2.control.vault.settings import settings_from_module_config
from fd2.module import ModuleDependency, Timeouts
from fd2.serving.errors import ConfigError, SecretError

VAULT_MODULE_TYPE = "vault"
Resolution = tuple[ResolvedModule, dict[str, ModuleDependency]] | Exception
"""A module's inputs for one environment, or why they cannot be had."""
_log = logging.getLogger("fd2.routes")


class _Unusable:
    """A `vault` backend that explains why this project's Vault cannot be used."""

    def __init__(self, why: str) -> None:
        self._why = why

    def resolve(self, reference: str, locator: str) -> str:
        raise SecretError(f"secret reference {reference!r}: {self._why}")


class ProjectInputs:
    def __init__(
        self,
        by_module: Mapping[str, ModuleDeclaration],
        *,
        secrets: SecretResolver,
        vault: VaultPool | None,
        environ: Mapping[str, str],
        base_timeouts: Timeouts,
    ) -> None:
        self._by_module = by_module
        self._secrets = secrets
        self._vault = vault
        self._environ = environ
        self._base_timeouts = base_timeouts
        # Once per module, not once per (module, environment) resolved.
        self._needs = {name: dependency_names(d.entry) for name, d in by_module.items()}
        self.problems = dependency_problems(
            self._needs,
            {name: d.status for name, d in by_module.items()},
        )
        self._vault_module = next(
            (
                d
                for d in by_module.values()
                if d.module_type == VAULT_MODULE_TYPE and d.status in SERVED_STATUSES
            ),
            None,
        )
        self._backends: dict[str, SecretBackend | None] = {}
        self._usage = SecretUsage(secrets)
        self._usages: dict[str, SecretUsage] = {}
        self._per_environment: dict[
            str,
            tuple[SecretUsage, dict[tuple[Any, ...], Any], Mapping[str, Any], PlaceholderContext],
        ] = {}

    def resolve_all(
        self, jobs: Iterable[tuple[ModuleDeclaration, str, frozenset[str]]]
    ) -> dict[tuple[str, str], Resolution]:
        """`resolve` for each (declaration, environment, secret fields), by (module, environment);
        a job that fails gives its exception, to be reported on that route alone."""
        resolutions: dict[tuple[str, str], Resolution] = {}
        for declaration, environment, secret_fields in jobs:
            try:
                resolution: Resolution = self.resolve(declaration, environment, secret_fields)
            except Exception as exc:  # reported per route by the builder, like a set-up failure
                resolution = exc
            resolutions[(declaration.module, environment)] = resolution
        return resolutions

    def resolve(
        self, declaration: ModuleDeclaration, environment: str, secret_fields: frozenset[str]
    ) -> tuple[ResolvedModule, dict[str, ModuleDependency]]:
        """A module's inputs for one environment, and its dependencies resolved for the same."""
        # Per environment, found in one look-up: one secret recorder (its resolver), merged into
        # the project's when the build reads `usage` (a recorder per route cost more than the
        # resolution it records); the memo of placeholder strings; and one placeholder context
        # for the modules declared by the same manifest (the same environment maps):
        # everything it holds is the same for them.
        maps = declaration.environment_maps
        shared = self._per_environment.get(environment)
        if shared is None or shared[2] is not maps:
            if shared is None:
                usage = self._usages[environment] = SecretUsage(self.resolver_for(environment))
            else:
                usage = shared[0]
            # Placeholder strings already resolved by this manifest's modules (one build only,
            # so a changed variable or Vault secret is read again by the next). Per manifest
            # maps: another manifest of the project may resolve the same text differently.
            memo: dict[tuple[Any, ...], Any] = {}
            shared = self._per_environment[environment] = (
                usage,
                memo,
                maps,
                declaration_context(maps, environment, usage, self._environ, memo),
            )
        usage, memo, _, context = shared
        resolved = resolve_declaration(
            declaration,
            environment,
            secrets=usage,
            secret_fields=secret_fields,
            environ=self._environ,
            base_timeouts=self._base_timeouts,
            memo=memo,
            context=context,
        )
        needs = self._needs[declaration.module]
        dependencies = (
            {name: self._dependency(name, environment, usage) for name in needs} if needs else {}
        )
        return resolved, dependencies

    @property
    def usage(self) -> SecretUsage:
        """The secrets the project's build used: its environments' recorders merged, when the
        build asks (once its routes are built). They also record what the routes' steps reach
        through the same placeholder contexts, after the configs are resolved."""
        for usage in self._usages.values():
            self._usage.merge(usage)
        return self._usage

    def _dependency(self, name: str, environment: str, usage: SecretUsage) -> ModuleDependency:
        dependency = self._by_module[name]
        try:
            return resolve_dependency(dependency, environment, secrets=usage, environ=self._environ)
        except ConfigError as exc:
            # Handed over with its problem: the module decides whether it can serve without it.
            _log.warning(
                "dependency %s/%s [%s] cannot be resolved: %s",
                dependency.project,
                name,
                environment,
                exc.message,
            )
            return ModuleDependency(
                name=name, module_type=dependency.module_type, config={}, problem=exc.message
            )

    def resolver_for(self, environment: str) -> SecretResolver:
        """fd2's resolver with this project's Vault (its `vault` module, else fd2's own)."""
        if environment not in self._backends:
            self._backends[environment] = self._vault_backend(environment)
        backend = self._backends[environment]
        return self._secrets.with_backends({"vault": backend}) if backend else self._secrets

    def _vault_backend(self, environment: str) -> SecretBackend | None:
        module = self._vault_module
        if module is None:
            return self._vault.default if self._vault is not None else None
        if self._vault is None:
            return _Unusable("this gateway has no Vault support enabled")
        context = PlaceholderContext(
            environments=module.environment_maps, environment=environment, environ=self._environ
        )
        try:
            config = resolve_value(dict(module.entry.config or {}), context, "config")
            if not isinstance(config, dict):
                raise ConfigError("config must be an object")
            settings = settings_from_module_config(config, default_ttl=self._vault.default_ttl_s)
        except ConfigError as exc:
            return _Unusable(
                f"the project's vault module {module.module!r} is invalid: {exc.message}"
            )
        return self._vault.store_for(settings)
