import pytest

from fd2.control.manifests.compile import declarations, resolve_declaration
from fd2.control.manifests.decode import convert_manifest
from fd2.control.secrets import Secret, SecretResolver
from fd2.module import Timeouts
from fd2.serving.errors import ConfigError

BASE = Timeouts(connect_s=2, read_s=60, total_s=300)


def resolve(config, environ=None):
    manifest = convert_manifest(
        {
            "project_id": "p",
            "environments": {"development": {"limits": {"read": "30"}}},
            "modules": [{"module_type": "t", "name": "m", "config": config}],
        },
        origin="p.json",
    )
    (declaration,) = declarations(manifest, origin="p.json", default_env="development")
    return resolve_declaration(
        declaration,
        "development",
        secrets=SecretResolver(environ=environ or {}),
        secret_fields=frozenset({"api_key"}),
        environ=environ or {},
        base_timeouts=BASE,
    )


def test_config_timeouts_replace_only_what_they_set():
    assert resolve({}).timeouts is BASE
    assert resolve({"timeouts": {"read_s": 5}}).timeouts == Timeouts(
        connect_s=2, read_s=5, total_s=300
    )
    # Values reached through placeholders arrive as strings.
    reached = resolve({"timeouts": {"read_s": "${environments.development.limits.read}"}})
    assert reached.timeouts.read_s == 30.0


@pytest.mark.parametrize("timeouts", [{"total_s": 0}, {"read_s": -1}, "fast", {"read_s": "x"}])
def test_invalid_timeouts_make_the_module_unavailable(timeouts):
    with pytest.raises(ConfigError, match="timeouts"):
        resolve({"timeouts": timeouts})


def test_secret_fields_become_secrets_whether_literal_or_referenced():
    literal = resolve({"api_key": "sk-literal-value"}).config["api_key"]
    assert isinstance(literal, Secret) and literal.reveal() == "sk-literal-value"
    referenced = resolve({"api_key": "env:KEY"}, {"KEY": "from-env"}).config["api_key"]
    assert referenced.reveal() == "from-env" and referenced.reference == "env:KEY"
    with pytest.raises(ConfigError, match="env:MISSING"):
        resolve({"api_key": "env:MISSING"})


def test_other_fields_are_not_treated_as_references():
    config = resolve({"system_prompt": "env: production notes"}).config
    assert config["system_prompt"] == "env: production notes"
