"""A jwt_config's `claims` are resolved when a token is requested, never when the route compiles."""

import pytest

from fd2.control.manifests.compile import declarations, resolve_declaration
from fd2.control.manifests.decode import convert_manifest
from fd2.control.manifests.deferred import DeferredValue, DeferredValueError
from fd2.control.secrets import Secret, SecretResolver
from fd2.module import Timeouts
from fd2.serving.errors import ConfigError

ENVIRONMENTS = {
    "common": {"secrets": {"groq_api_key": "env:GROQ_KEY", "nested": {"token": "env:NESTED"}}},
    "development": {"urls": {"jwt": "http://127.0.0.1:5000"}},
    "production": {"urls": {"jwt": "https://jwt.internal"}},
}


def resolve(config, *, module_type="jwt_config", environ=None, environment="production"):
    manifest = convert_manifest(
        {
            "project_id": "p",
            "environments": ENVIRONMENTS,
            "modules": [{"module_type": module_type, "name": "auth", "config": config}],
        },
        origin="p.json",
    )
    (declaration,) = declarations(manifest, origin="p.json", default_env="development")
    return resolve_declaration(
        declaration,
        environment,
        secrets=SecretResolver(environ=environ or {}),
        secret_fields=frozenset({"secret_key", "jwe_config.encryption_key"}),
        environ=environ or {},
        base_timeouts=Timeouts(),
    ).config


CLAIMS = {
    "static": {
        "environment": "${environment}",
        "groq_api_key": "${environments.common.secrets.groq_api_key}",
        "literal_reference": "env:LITERAL",
        "${environment}_tier": "gold",
        "models": ["${environments.${environment}.urls.jwt}"],
    },
    "dynamic": {"nested": "${environments.common.secrets.nested}"},
}


def test_claims_stay_as_written_until_resolved():
    config = resolve({"service_url": "${environments.${environment}.urls.jwt}", "claims": CLAIMS})
    assert config["service_url"] == "https://jwt.internal"  # the rest is resolved as before
    claims = config["claims"]
    assert isinstance(claims, DeferredValue) and repr(claims) == "DeferredValue(config.claims)"
    with pytest.raises(DeferredValueError) as failed:
        claims.resolve()
    assert failed.value.path == "config.claims.static.groq_api_key"
    assert "GROQ_KEY" in failed.value.reason  # the reference, for the log
    assert "GROQ_KEY" not in failed.value.message  # the client hears the path only


def test_resolved_claims_carry_secrets_as_secrets():
    environ = {"GROQ_KEY": "gsk-1", "LITERAL": "lit-2", "NESTED": "nest-3"}
    resolved = resolve({"claims": CLAIMS}, environ=environ)["claims"].resolve()
    static = resolved["static"]
    assert static["environment"] == "production"
    assert static["production_tier"] == "gold"
    assert static["models"] == ["https://jwt.internal"]
    assert isinstance(static["groq_api_key"], Secret) and static["groq_api_key"].reveal() == "gsk-1"
    assert static["literal_reference"].reveal() == "lit-2"
    assert resolved["dynamic"]["nested"]["token"].reveal() == "nest-3"


@pytest.mark.parametrize(
    ("claim", "path"),
    [
        ("${environments.common.secrets.nowhere}", "config.claims.static.c"),
        ("${UNSET_VARIABLE}", "config.claims.static.c"),
        ("${environments.common.secrets", "config.claims.static.c"),
    ],
)
def test_every_unresolvable_claim_names_its_path(claim, path):
    claims = resolve({"claims": {"static": {"c": claim}}})["claims"]
    with pytest.raises(DeferredValueError) as failed:
        claims.resolve()
    assert failed.value.path == path


def test_only_a_jwt_configs_claims_are_deferred():
    with pytest.raises(ConfigError):
        resolve({"claims": CLAIMS}, module_type="rag_config")


def test_dotted_secret_fields_reach_into_objects():
    config = resolve(
        {"jwe_config": {"enabled": True, "encryption_key": "env:JWE"}}, environ={"JWE": "k" * 32}
    )
    key = config["jwe_config"]["encryption_key"]
    assert isinstance(key, Secret) and key.reveal() == "k" * 32
    assert resolve({"jwe_config": None})["jwe_config"] is None
    assert resolve({"jwe_config": "text"})["jwe_config"] == "text"
