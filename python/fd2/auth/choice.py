"""Which credentials a route asks for, decided from everything its manifest still says.

A manifest that went through the Control Tower has lost its modules' `auth` and `dependencies`
unless they were written under `metadata.fd2`. So the decision never depends on one field alone:
an explicit `auth.mode` wins; otherwise every sign of JWT protection the Control Tower keeps
counts (a `jwt_config` dependency, `jwt_auth_enabled` + `jwt_module_reference`, a `jwt_config`
module anywhere in the project); with none of them the operator's `--default-auth` decides, which
is `api_key` unless the operator opens it explicitly. Nothing is served open by omission.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import msgspec

from fd2.control.gateway import GatewayRoute
from fd2.control.manifests.compile import ModuleDeclaration
from fd2.control.manifests.models import JWT_CONFIG_MODULE_TYPE, SERVED_STATUSES
from fd2.serving.errors import ConfigError

MODES: Final = ("none", "api_key", "jwt", "either")


class AuthChoice(msgspec.Struct, frozen=True, kw_only=True):
    mode: str
    jwt_modules: tuple[str, ...] = ()
    """The jwt_config modules whose tokens are accepted (any one of them)."""
    named: bool = False
    """True when the manifest names the JWT module(s): one that cannot be used is an error.
    False when they were inferred from the project: unusable ones are skipped while one works."""
    reason: str
    """Where the decision came from, for the operator's view and logs."""
    gateway: bool = False
    """True when the APISIX route's own jwt-auth consumer verifies the tokens."""


def choose_auth(
    declaration: ModuleDeclaration,
    auth: Mapping[str, Any],
    peers: Mapping[str, ModuleDeclaration],
    default_auth: str,
    gateway: GatewayRoute | None = None,
) -> AuthChoice:
    """`auth`: the module's resolved `auth` block (its entry or `metadata.fd2`); `gateway`: the
    APISIX route the module names, whose access plugins count as the manifest's word."""
    choice = _choose(declaration, auth, peers, default_auth, gateway)
    if choice.mode == "none" and gateway is not None and auth.get("mode") is None:
        guards: tuple[str, ...] = ("jwt-auth",) if gateway.jwt_auth is not None else ()
        guards += gateway.unimplemented_auth_plugins
        if guards:
            # The route says who may call with a plugin fd2 cannot apply: never serve it open.
            raise ConfigError(
                f"APISIX route {gateway.name!r} restricts callers with {', '.join(guards)}, "
                "which fd2 cannot apply here; set auth.mode in metadata.fd2 explicitly"
            )
    return choice


def _choose(
    declaration: ModuleDeclaration,
    auth: Mapping[str, Any],
    peers: Mapping[str, ModuleDeclaration],
    default_auth: str,
    gateway: GatewayRoute | None,
) -> AuthChoice:
    explicit = auth.get("mode")
    if explicit is not None and explicit not in MODES:
        raise ConfigError(f"auth.mode must be one of {', '.join(MODES)}")
    named = auth.get("jwt_module")
    if named is not None and not isinstance(named, str):
        raise ConfigError("auth.jwt_module must be a module name")
    jwt_modules: tuple[str, ...]
    if named:
        jwt_modules, source = (named,), "auth.jwt_module"
    else:
        jwt_modules, source = _jwt_references(declaration, peers)
    if explicit is not None:
        if explicit in ("jwt", "either") and not jwt_modules:
            jwt_modules, source = _project_jwt_modules(peers), "the project's jwt_config modules"
            if not jwt_modules:
                raise ConfigError(f"auth.mode {explicit!r} needs a {JWT_CONFIG_MODULE_TYPE} module")
            return AuthChoice(mode=explicit, jwt_modules=jwt_modules, reason=f"auth.mode; {source}")
        return AuthChoice(
            mode=explicit,
            jwt_modules=jwt_modules if explicit in ("jwt", "either") else (),
            named=bool(jwt_modules),
            reason="auth.mode",
        )
    if declaration.module_type == JWT_CONFIG_MODULE_TYPE:
        # The token endpoint is a login: the JWT service checks the username and password.
        return AuthChoice(mode="none", reason="a jwt_config module's token endpoint is a login")
    if (declaration.entry.config or {}).get("api_key_enabled") is True:
        # The Control Tower's model_server field: its gateway puts key-auth on the route.
        if jwt_modules:
            return AuthChoice(
                mode="either",
                jwt_modules=jwt_modules,
                named=True,
                reason=f"api_key_enabled and {source}",
            )
        return AuthChoice(mode="api_key", reason="api_key_enabled")
    if jwt_modules:
        return AuthChoice(mode="jwt", jwt_modules=jwt_modules, named=True, reason=source)
    if gateway is not None and gateway.jwt_auth is not None and gateway.jwt_auth.key is not None:
        return AuthChoice(
            mode="jwt",
            gateway=True,
            reason=f"APISIX route {gateway.name!r}: jwt-auth of its consumer",
        )
    project_modules = _project_jwt_modules(peers)
    if project_modules:
        return AuthChoice(
            mode="jwt",
            jwt_modules=project_modules,
            reason="the project has jwt_config module(s): " + ", ".join(project_modules),
        )
    return AuthChoice(mode=default_auth, reason="--default-auth (the manifest says nothing)")


def _jwt_references(
    declaration: ModuleDeclaration, peers: Mapping[str, ModuleDeclaration]
) -> tuple[tuple[str, ...], str]:
    """JWT modules the module itself points at: its dependencies, or the Control Tower's
    `jwt_auth_enabled` + `jwt_module_reference` (rag_service, model_server)."""
    entry = declaration.entry
    found = [
        name
        for name in getattr(entry, "dependencies", None) or ()
        if (peer := peers.get(name)) is not None and peer.module_type == JWT_CONFIG_MODULE_TYPE
    ]
    if found:
        return tuple(found), "a jwt_config dependency"
    config = entry.config or {}
    reference = config.get("jwt_module_reference")
    if config.get("jwt_auth_enabled") is True:
        if not isinstance(reference, str) or not reference:
            raise ConfigError("jwt_auth_enabled needs jwt_module_reference (a jwt_config module)")
        return (reference,), "jwt_auth_enabled + jwt_module_reference"
    workflow_jwt = config.get("jwt_module")  # langgraph_workflow's own field
    if isinstance(workflow_jwt, str) and workflow_jwt:
        return (workflow_jwt,), "jwt_module"
    return (), ""


def _project_jwt_modules(peers: Mapping[str, ModuleDeclaration]) -> tuple[str, ...]:
    return tuple(
        name
        for name, peer in peers.items()
        if peer.module_type == JWT_CONFIG_MODULE_TYPE and peer.status in SERVED_STATUSES
    )
