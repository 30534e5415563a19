"""`fd2 check` on module types whose problems the route table does not show: a `jwt_config`
module's claims (resolved per token request), a project's `vault` module (read for its `vault:`
references, never a route), APISIX routes no module serves yet. No secret value is read."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from fd2.cli.check_problems import Problem, Severity
from fd2.config import Settings
from fd2.control.gateway import compile_apisix_route
from fd2.control.manifests.compile import ModuleDeclaration, resolve_declaration, resolve_dependency
from fd2.control.manifests.deferred import DeferredValue, DeferredValueError
from fd2.control.manifests.models import JWT_CONFIG_MODULE_TYPE, SERVED_STATUSES
from fd2.control.manifests.placeholders import PlaceholderContext, resolve_value
from fd2.control.offline_secrets import OfflineSecrets, PlaceholderEnviron
from fd2.control.route_inputs import VAULT_MODULE_TYPE
from fd2.control.vault.settings import settings_from_module_config
from fd2.module import Timeouts
from fd2.serving.errors import ConfigError

GATEWAY_TYPE: Final = "api_gateway"


def claim_problems(
    declarations: Iterable[ModuleDeclaration],
    secrets: OfflineSecrets,
    environ: PlaceholderEnviron,
) -> list[Problem]:
    """A jwt_config module's claims are resolved when a token is requested: one that cannot be
    fails every token request of that environment (503), not the module."""
    problems = []
    for declaration in declarations:
        if declaration.module_type != JWT_CONFIG_MODULE_TYPE:
            continue
        for environment in declaration.environments:
            try:
                resolved = resolve_declaration(
                    declaration,
                    environment,
                    secrets=secrets,
                    secret_fields=frozenset(),
                    environ=environ,
                    base_timeouts=Timeouts(),
                )
                claims = resolved.config.get("claims")
                if isinstance(claims, DeferredValue):
                    claims.resolve()
            except DeferredValueError as exc:
                problems.append(
                    _problem(
                        declaration,
                        "warning",
                        f"token requests will fail (503): {exc.path}: {exc.reason}",
                        environment,
                    )
                )
            except ConfigError:
                continue  # the module itself is not served: reported with its route
    return problems


def vault_module_problems(
    declarations: Iterable[ModuleDeclaration],
    secrets: OfflineSecrets,
    environ: Mapping[str, str],
    settings: Settings,
) -> list[Problem]:
    """A project's `vault` module: where its vault: references are read. fd2 does not log in
    here; its settings and credential references are checked."""
    problems = []
    for declaration in declarations:
        if declaration.module_type != VAULT_MODULE_TYPE:
            continue
        if declaration.status not in SERVED_STATUSES:
            continue
        for environment in declaration.environments:
            context = PlaceholderContext(
                environments=declaration.environment_maps,
                environment=environment,
                environ=environ,
            )
            try:
                config = resolve_value(dict(declaration.entry.config or {}), context, "config")
                vault = settings_from_module_config(config, default_ttl=settings.vault_secret_ttl)
                for reference in (vault.token_ref, vault.role_id_ref, vault.secret_id_ref):
                    if reference is not None:
                        if reference.startswith("vault:"):
                            raise ConfigError(
                                f"{reference!r}: Vault credentials cannot be in Vault"
                            )
                        secrets.resolve(reference)
            except ConfigError as exc:
                problems.append(
                    _problem(
                        declaration,
                        "error",
                        f"the project's vault: references will fail: {exc.message}",
                        environment,
                    )
                )
    return problems


def apisix_route_problems(
    peers: Mapping[str, Mapping[str, ModuleDeclaration]],
    secrets: OfflineSecrets,
    environ: Mapping[str, str],
) -> list[Problem]:
    """Routes of APISIX gateway modules that no module serves: compiled anyway, so a module that
    names one later does not find it broken. (A route a module serves is compiled with it.)"""
    problems = []
    for modules in peers.values():
        served = {
            (str(config.get("apisix_gateway_module")), str(config.get("apisix_route")))
            for d in modules.values()
            if (config := d.entry.config or {}).get("apisix_route")
        }
        for declaration in modules.values():
            config = declaration.entry.config or {}
            if declaration.module_type != GATEWAY_TYPE or config.get("gateway_type") not in (
                None,
                "apisix",
            ):
                continue
            for name in _route_names(config.get("routes")):
                if (declaration.module, name) in served:
                    continue
                for environment in declaration.environments:
                    try:
                        gateway = resolve_dependency(
                            declaration, environment, secrets=secrets, environ=environ
                        )
                        compile_apisix_route(gateway.config, name)
                    except ConfigError as exc:
                        problems.append(
                            _problem(
                                declaration,
                                "warning",
                                f"APISIX route {name!r} cannot be compiled (no module serves it "
                                f"yet): {exc.message}",
                                environment,
                            )
                        )
    return problems


def _route_names(routes: Any) -> list[str]:
    if not isinstance(routes, list):
        return []
    names = []
    for route in routes:
        if isinstance(route, dict):
            name = route.get("name", route.get("id"))
            if name is not None:
                names.append(str(name))
    return names


def _problem(
    declaration: ModuleDeclaration, severity: Severity, message: str, environment: str
) -> Problem:
    return Problem(
        severity=severity,
        message=message,
        origin=declaration.origin,
        project=declaration.project,
        module=declaration.module,
        environments=[environment],
    )
