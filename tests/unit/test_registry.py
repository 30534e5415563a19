"""python/fd2/control/registry.py: the installed module types, and how a missing one is logged."""

import logging
from pathlib import Path

import aiohttp

from fd2.auth.token_module import JwtTokenModule
from fd2.control.manifests.decode import decode_manifest
from fd2.control.registry import ModuleRegistry
from fd2.control.route_builder import RouteBuilder
from fd2.control.secrets import SecretResolver
from fd2.module import Timeouts

EXAMPLES = Path(__file__).parents[2] / "examples" / "manifests"
ENV = {"ACME_UPSTREAM_API_KEY": "k", "ACME_DEV_JWT_SECRET": "acme-dev-jwt-secret-0123456789"}


def test_installed_fd2_serves_every_built_in_type():
    # The entry points come from fd2's own distribution (the built-in modules ship inside it).
    registry = ModuleRegistry()
    for module_type in (
        "inference_endpoint",
        "inference_openai",
        "jwt_config",
        "rag_service",
        "model_server",
    ):
        assert registry.resolve(module_type, None) is not None, module_type
    assert {"fd2", "fd2_inference", "fd2_rag", "fd2_model_server"} <= set(registry.allowed_packages)


def test_install_hint_names_the_package():
    assert "reinstall the fd2 package" in ModuleRegistry.install_hint("inference_endpoint")
    hint = ModuleRegistry.install_hint("monitoring")
    assert "'monitoring'" in hint and "'fd2.modules'" in hint


async def test_a_type_no_package_serves_is_a_warning(caplog):
    # acme names `monitoring` (served by nothing) and `vault` (read by the core): the first is a
    # warning that says what to install, the second is no warning at all. This registry lacks
    # the inference module, as an install without fd2's built-in modules would.
    manifest = decode_manifest((EXAMPLES / "acme.json").read_bytes(), origin="acme.json")
    caplog.set_level(logging.INFO, logger="fd2.routes")
    async with aiohttp.ClientSession() as http:
        builder = RouteBuilder(
            registry=ModuleRegistry(classes={"jwt_config": JwtTokenModule}),
            secrets=SecretResolver(environ=ENV),
            http=http,
            default_environment="development",
            base_timeouts=Timeouts(),
            environ=ENV,
        )
        await builder.apply_project("acme", [("acme.json", manifest)], "d1")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    observability = [m for m in warnings if "acme/observability" in m]
    assert observability == [
        "module acme/observability: type monitoring is served by no installed package; "
        + ModuleRegistry.install_hint("monitoring")
    ]
    chat = [m for m in warnings if "acme/chat:" in m]
    assert chat and "reinstall the fd2 package" in chat[0]
    assert not [m for m in warnings if "vault-manager" in m]
