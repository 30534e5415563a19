"""A project's inputs per environment: placeholder strings resolved once per manifest's maps."""

import json

from fd2.control.manifests.compile import declarations
from fd2.control.manifests.decode import decode_manifest
from fd2.control.route_inputs import ProjectInputs
from fd2.control.secrets import SecretResolver
from fd2.module import Timeouts


def declared(module: str, url: str):  # type: ignore[no-untyped-def]
    raw = {
        "project_id": "acme",
        "project_name": "Acme",
        "version": "1.0.0",
        "owner": "o",
        "environment": "development",
        "environments": {"development": {"upstream": url}},
        "modules": [
            {
                "module_type": "inference_endpoint",
                "name": module,
                "status": "enabled",
                "config": {
                    "model_name": "m",
                    "endpoint_url": "${environments.development.upstream}",
                },
            }
        ],
    }
    manifest = decode_manifest(json.dumps(raw).encode(), origin=f"{module}.json")
    (declaration,) = declarations(manifest, origin=f"{module}.json", default_env="development")
    return declaration


def test_the_same_text_in_two_manifests_resolves_by_each_manifest_s_environments() -> None:
    """Two manifests of one project (a project manifest and a module's, say) with their own
    `environments`: the same placeholder text at the same place must not be taken from the
    other manifest's resolution."""
    first = declared("chat", "http://one.example/v1/chat/completions")
    second = declared("other", "http://two.example/v1/chat/completions")
    inputs = ProjectInputs(
        {"chat": first, "other": second},
        secrets=SecretResolver(environ={}),
        vault=None,
        environ={},
        base_timeouts=Timeouts(),
    )
    for declaration, host in ((first, "one"), (second, "two"), (first, "one")):
        resolved, _ = inputs.resolve(declaration, "development", frozenset())
        assert resolved.config["endpoint_url"] == f"http://{host}.example/v1/chat/completions"
