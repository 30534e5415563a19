"""Dependencies named in a manifest are resolved and handed to the module; bad ones make it 503."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from fd2.control.manifests.decode import decode_manifest
from fd2.control.registry import ModuleRegistry
from fd2.control.route_builder import RouteBuilder
from fd2.control.secrets import Secret, SecretResolver
from fd2.module import Module, ModuleContext, Timeouts
from fd2.serving.errors import ConfigError

ACME = json.loads((Path(__file__).parents[2] / "examples" / "manifests" / "acme.json").read_text())
ENV = {"ACME_UPSTREAM_API_KEY": "acme-upstream-1", "ACME_DEV_JWT_SECRET": "acme-jwt-dev-1"}


class Capturing(Module):
    module_types = ("inference_endpoint",)
    secret_fields = frozenset({"api_key"})

    def __init__(self) -> None:
        self.context: ModuleContext | None = None

    async def setup(self, context: ModuleContext) -> None:
        self.context = context

    def endpoints(self) -> Any:
        return {}


@pytest.fixture
async def builder() -> AsyncIterator[RouteBuilder]:
    async with aiohttp.ClientSession() as http:
        builder = RouteBuilder(
            registry=ModuleRegistry(classes={"inference_endpoint": Capturing}),
            secrets=SecretResolver(environ=ENV),
            http=http,
            default_environment="development",
            base_timeouts=Timeouts(),
            environ=ENV,
        )
        yield builder
        await builder.close()


async def build(builder: RouteBuilder, raw: dict[str, Any]) -> None:
    manifest = decode_manifest(json.dumps(raw).encode(), origin="acme.json")
    await builder.apply_project("acme", [("acme.json", manifest)], json.dumps(raw))


def chat_context(builder: RouteBuilder, environment: str = "development") -> ModuleContext:
    route = builder.table.groups[("acme", "chat")].by_environment[environment]
    assert route.unavailable is None, route.unavailable
    assert route.loaded is not None
    context = route.loaded.instance.context  # type: ignore[attr-defined]
    assert isinstance(context, ModuleContext)
    return context


async def test_chat_receives_its_auth_dependency_resolved(builder: RouteBuilder) -> None:
    await build(builder, ACME)
    auth = chat_context(builder).dependencies["auth"]
    assert auth.module_type == "jwt_config"
    assert auth.config["service_url"] == "http://127.0.0.1:5000"
    assert auth.config["claims"]["static"]["environment"] == "development"
    secret = auth.config["secret_key"]
    assert isinstance(secret, Secret) and secret.reveal() == "acme-jwt-dev-1"
    assert "acme-jwt-dev-1" not in repr(auth)


async def test_a_jwt_config_without_secret_key_uses_the_environments_jwt_secret(
    builder: RouteBuilder,
) -> None:
    raw = copy.deepcopy(ACME)
    auth = next(m for m in raw["modules"] if m["name"] == "auth")
    del auth["config"]["secret_key"]
    await build(builder, raw)
    secret = chat_context(builder).dependencies["auth"].config["secret_key"]
    assert isinstance(secret, Secret) and secret.reveal() == "acme-jwt-dev-1"


async def test_an_unresolvable_dependency_is_handed_over_with_its_problem(
    builder: RouteBuilder,
) -> None:
    await build(builder, ACME)
    auth = chat_context(builder, "staging").dependencies["auth"]
    assert auth.config == {}
    assert auth.problem is not None
    assert "vault:secret/data/acme/staging#jwt_secret_key" in auth.problem


class NeedsAuth(Capturing):
    async def setup(self, context: ModuleContext) -> None:
        auth = context.dependencies["auth"]
        if auth.problem is not None:
            raise ConfigError(f"cannot verify tokens: {auth.problem}")
        await super().setup(context)


async def test_a_module_that_needs_its_dependency_refuses_to_serve_without_it() -> None:
    async with aiohttp.ClientSession() as http:
        builder = RouteBuilder(
            registry=ModuleRegistry(classes={"inference_endpoint": NeedsAuth}),
            secrets=SecretResolver(environ=ENV),
            http=http,
            default_environment="development",
            base_timeouts=Timeouts(),
            environ=ENV,
        )
        await build(builder, ACME)
        group = builder.table.groups[("acme", "chat")]
        assert group.by_environment["development"].unavailable is None
        staging = group.by_environment["staging"].unavailable
        assert staging is not None and staging.status == 503
        assert "cannot verify tokens" in staging.message
        assert "vault:secret/data/acme/staging#jwt_secret_key" in staging.message
        await builder.close()


@pytest.mark.parametrize(
    ("dependencies", "fragment"),
    [
        (["auth", "ghost"], "depends on unknown module(s): ghost"),
        (["chat"], "dependency cycle: chat -> chat"),
        (["embed"], "dependency cycle: chat -> embed -> chat"),
    ],
)
async def test_unknown_and_cyclic_dependencies_make_only_that_module_invalid(
    builder: RouteBuilder, dependencies: list[str], fragment: str
) -> None:
    raw = copy.deepcopy(ACME)
    for module in raw["modules"]:
        if module["name"] == "chat":
            module["dependencies"] = dependencies
        if module["name"] == "embed" and "embed" in dependencies:
            module["dependencies"] = ["chat"]
    await build(builder, raw)
    chat = builder.table.groups[("acme", "chat")].by_environment["development"]
    assert chat.unavailable is not None and chat.unavailable.status == 503
    assert fragment in chat.unavailable.message
    assert chat.unavailable.message.startswith("Module acme/chat is not available: ")
    if "embed" not in dependencies:  # the rest of the project still serves
        embed = builder.table.groups[("acme", "embed")].by_environment["development"]
        assert embed.unavailable is None
