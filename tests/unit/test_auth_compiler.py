"""The steps a route gets from its manifests (auth policy, limits), decided at compile time."""

import hashlib
import hmac
import json
from pathlib import Path

import aiohttp
import pytest

from fd2.auth.api_keys import KeyHasher
from fd2.control.manifests.compile import declarations
from fd2.control.manifests.decode import decode_manifest
from fd2.control.secrets import SecretResolver
from fd2.limits.gcra import LocalLimiter
from fd2.pipeline.compiler import StepCompiler
from fd2.serving.errors import ConfigError

REFERENCE = Path(__file__).parents[2] / "examples" / "manifests" / "acme.json"
ENV = {"ACME_DEV_JWT_SECRET": "s" * 40, "ACME_UPSTREAM_API_KEY": "k"}


def acme(edit=None):
    raw = json.loads(REFERENCE.read_text())
    if edit:
        edit(raw)
    manifest = decode_manifest(json.dumps(raw).encode(), origin="acme.json")
    return {d.module: d for d in declarations(manifest, origin="x", default_env="development")}


@pytest.fixture
async def compiler():
    async with aiohttp.ClientSession() as http:
        yield StepCompiler(
            secrets=SecretResolver(environ=ENV),
            environ=ENV,
            http=http,
            limiter=LocalLimiter(),
            hasher=KeyHasher(b"pepper"),
        )


def steps_for(compiler, peers, module, environment="development"):
    return compiler.compile(peers[module], environment, peers, {})


async def test_a_jwt_config_dependency_means_jwt(compiler):
    peers = acme()
    steps = steps_for(compiler, peers, "chat")
    assert steps.policy.mode == "jwt"
    assert steps.policy._verifier is not None
    # the environment's limits became the route's bucket
    assert [(s.kind, s.limit) for s in steps.limits.static_specs] == [("requests", 20)]


async def test_modules_without_the_dependency_still_need_the_projects_jwt(compiler):
    # The Control Tower drops `dependencies`: a project with a jwt_config module is never served
    # open because one went missing.
    policy = steps_for(compiler, acme(), "legacy").policy
    assert policy.mode == "jwt"
    assert "jwt_config" in policy.source


async def test_an_open_route_without_limits_has_no_steps_at_all(compiler):
    def edit(raw):
        del raw["environments"]["development"]["limits"]
        next(m for m in raw["modules"] if m["name"] == "legacy")["auth"] = {"mode": "none"}

    steps = steps_for(compiler, acme(edit), "legacy")
    assert steps.empty and steps.policy.mode == "none"

    async def handler(request, send):
        return None

    handlers = {"/v1/chat/completions": {"POST": handler}}
    # the module's own handlers, not a copy: the request path pays nothing for the route
    assert steps.apply(handlers, {}) is handlers


async def test_the_token_endpoint_of_a_jwt_module_is_a_login(compiler):
    policy = steps_for(compiler, acme(), "auth").policy
    assert policy.mode == "none"


async def test_a_project_without_any_auth_asks_for_api_keys_by_default(compiler):
    def edit(raw):
        raw["modules"] = [m for m in raw["modules"] if m["module_type"] != "jwt_config"]
        for module in raw["modules"]:
            module.pop("dependencies", None)

    policy = steps_for(compiler, acme(edit), "chat").policy
    assert policy.mode == "api_key"
    assert "--default-auth" in policy.source


async def test_default_auth_none_opens_only_modules_that_say_nothing(compiler):
    def edit(raw):
        raw["modules"] = [m for m in raw["modules"] if m["module_type"] != "jwt_config"]
        for module in raw["modules"]:
            module.pop("dependencies", None)
        next(m for m in raw["modules"] if m["name"] == "embed")["auth"] = {"mode": "api_key"}

    compiler._default_auth = "none"
    peers = acme(edit)
    assert steps_for(compiler, peers, "chat").policy.mode == "none"
    assert steps_for(compiler, peers, "embed").policy.mode == "api_key"


async def test_auth_survives_the_control_tower_in_metadata(compiler):
    def edit(raw):
        chat = next(m for m in raw["modules"] if m["name"] == "chat")
        del chat["dependencies"]
        raw["metadata"]["fd2"] = {
            "modules": {"chat": {"auth": {"mode": "api_key"}}},
            "api_keys": [{"id": "k1", "hash": "ab" * 32}],
        }

    steps = steps_for(compiler, acme(edit), "chat")
    assert steps.policy.mode == "api_key"
    assert len(steps.policy._keys) == 1


async def test_jwt_auth_enabled_names_the_jwt_module(compiler):
    def edit(raw):
        raw["modules"].append(
            {
                "module_type": "rag_service",
                "name": "rag",
                "config": {
                    "service_url": "http://127.0.0.1:1",
                    "configuration_name": "c",
                    "jwt_auth_enabled": True,
                    "jwt_module_reference": "auth",
                },
            }
        )

    policy = steps_for(compiler, acme(edit), "rag").policy
    assert policy.mode == "jwt"
    assert policy.source == "jwt_auth_enabled + jwt_module_reference"


async def test_several_inferred_jwt_modules_accept_any_and_skip_unusable_ones(compiler):
    def edit(raw):
        auth = next(m for m in raw["modules"] if m["name"] == "auth")
        raw["modules"].append({**auth, "name": "auth2"})
        broken = {**auth, "name": "broken", "config": {**auth["config"], "algorithm": "RS256"}}
        raw["modules"].append(broken)
        for module in raw["modules"]:
            module.pop("dependencies", None)

    policy = steps_for(compiler, acme(edit), "chat").policy
    assert policy.mode == "jwt"
    assert type(policy._verifier).__name__ == "AnyOfVerifiers"
    assert len(policy._verifier._verifiers) == 2


async def test_a_named_jwt_module_that_cannot_verify_is_an_error_not_a_skip(compiler):
    def edit(raw):
        auth = next(m for m in raw["modules"] if m["name"] == "auth")
        auth["config"]["algorithm"] = "RS256"

    with pytest.raises(ConfigError, match="public_key or jwks_url"):
        steps_for(compiler, acme(edit), "chat")


async def test_an_explicit_auth_block_wins(compiler):
    def edit(raw):
        chat = next(m for m in raw["modules"] if m["name"] == "chat")
        chat["auth"] = {"mode": "api_key"}
        raw["api_keys"] = [{"id": "k1", "hash": "ab" * 32}]

    steps = steps_for(compiler, acme(edit), "chat")
    assert steps.policy.mode == "api_key"
    assert steps.policy._verifier is None
    assert len(steps.policy._keys) == 1


async def test_the_secret_falls_back_to_the_environments_jwt_secret_key(compiler):
    def edit(raw):
        auth = next(m for m in raw["modules"] if m["name"] == "auth")
        del auth["config"]["secret_key"]

    assert steps_for(compiler, acme(edit), "chat").policy._verifier is not None


def _auth_config(**changes):
    def edit(raw):
        auth = next(m for m in raw["modules"] if m["name"] == "auth")
        auth["config"].update(changes)

    return edit


async def test_the_rate_limit_window_comes_from_the_jwt_module(compiler):
    assert steps_for(compiler, acme(), "chat").policy.rate_limit_window == "hour"
    peers = acme(_auth_config(rate_limit_window="${environments.${environment}.window}"))
    peers["chat"].environment_maps["development"]["window"] = "minute"
    assert steps_for(compiler, peers, "chat").policy.rate_limit_window == "minute"
    for wrong in ("fortnight", ["minute"], {"minute": 1}, 60):
        with pytest.raises(ConfigError, match="rate_limit_window"):
            steps_for(compiler, acme(_auth_config(rate_limit_window=wrong)), "chat")


async def test_claims_that_cannot_be_resolved_never_disable_the_verifier(compiler):
    # The Control Tower's own samples put secrets in claims; only the JWT service reads them.
    claims = {
        "static": {
            "environment": "${environment}",
            "groq_api_key": "${environments.common.secrets.groq_api_key}",
            "missing": "${environments.common.secrets.nowhere}",
            "unset": "${UNSET_VARIABLE_FOR_THE_TEST}",
        }
    }

    def edit(raw):
        _auth_config(claims=claims)(raw)
        raw["environments"]["common"]["secrets"]["groq_api_key"] = "env:UNSET_GROQ_KEY"

    assert steps_for(compiler, acme(edit), "chat").policy._verifier is not None


async def test_no_secret_makes_the_route_unavailable_rather_than_open(compiler):
    peers = acme()
    # staging's secret is a Vault reference, and this gateway has no Vault backend
    with pytest.raises(ConfigError):
        steps_for(compiler, peers, "chat", "staging")


@pytest.mark.parametrize(
    "auth",
    [{"mode": "sometimes"}, {"mode": "jwt", "jwt_module": "observability"}],
)
async def test_bad_auth_blocks_are_config_errors(compiler, auth):
    def edit(raw):
        next(m for m in raw["modules"] if m["name"] == "legacy")["auth"] = auth

    with pytest.raises(ConfigError):
        steps_for(compiler, acme(edit), "legacy")


async def test_malformed_key_records_are_config_errors(compiler):
    def edit(raw):
        next(m for m in raw["modules"] if m["name"] == "legacy")["auth"] = {"mode": "api_key"}
        raw["api_keys"] = [{"id": "k1", "hash": "not-hex"}]

    with pytest.raises(ConfigError, match="64 hex"):
        steps_for(compiler, acme(edit), "legacy")


async def test_module_limits_override_and_project_limits_are_shared(compiler):
    def edit(raw):
        raw["environments"]["development"]["limits"] = {
            "requests_per_second": 20,
            "tokens_per_minute": 1000,
            "project": {"requests_per_minute": 600},
        }
        next(m for m in raw["modules"] if m["name"] == "embed")["limits"] = {
            "requests_per_second": 5
        }

    peers = acme(edit)
    embed = steps_for(compiler, peers, "embed").limits.static_specs
    chat = steps_for(compiler, peers, "chat").limits.static_specs
    assert {(s.key, s.limit) for s in embed} == {
        ("route:acme:embed:development:requests_per_second", 5),
        ("route:acme:embed:development:tokens_per_minute", 1000),
        ("project:acme:development:requests_per_minute", 600),
    }
    shared = {s.key for s in embed} & {s.key for s in chat}
    assert shared == {"project:acme:development:requests_per_minute"}


async def test_keys_outside_a_route_are_known_but_refused_there(compiler):
    key = "fd2_some-key"
    digest = hmac.new(b"pepper", key.encode(), hashlib.sha256).hexdigest()

    def edit(raw):
        for name in ("legacy", "embed"):
            next(m for m in raw["modules"] if m["name"] == name)["auth"] = {"mode": "api_key"}
        raw["api_keys"] = [{"id": "k", "hash": f"hmac-sha256:{digest}", "modules": ["embed"]}]

    peers = acme(edit)
    legacy = steps_for(compiler, peers, "legacy").policy
    embed = steps_for(compiler, peers, "embed").policy
    raw = bytes.fromhex(digest)
    assert legacy._keys.find(raw) is not None and legacy._identities[raw] is None
    assert embed._identities[raw] is not None
