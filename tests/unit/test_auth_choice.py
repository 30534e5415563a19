"""How a route's auth mode is chosen from what survives the Control Tower (fd2.auth.choice)."""

from __future__ import annotations

from typing import Any

from fd2.auth.choice import choose_auth
from fd2.control.manifests.compile import declarations
from fd2.control.manifests.decode import convert_manifest


def _choice(models_config: dict[str, Any], default_auth: str = "none") -> tuple[str, str]:
    raw = {
        "project_id": "p",
        "environment": "development",
        "modules": [
            {"module_type": "model_server", "name": "models", "config": models_config},
            {"module_type": "jwt_config", "name": "auth", "config": {"secret_key": "x" * 40}},
        ],
    }
    found = {
        d.module: d
        for d in declarations(convert_manifest(raw, origin="t"), origin="t", default_env="dev")
    }
    choice = choose_auth(found["models"], {}, found, default_auth)
    return choice.mode, choice.reason


def test_api_key_enabled_asks_callers_for_a_key_even_when_the_default_is_open() -> None:
    # The project's jwt_config would make it jwt; api_key_enabled alone says keys.
    assert _choice({"api_key_enabled": True}) == ("api_key", "api_key_enabled")


def test_api_key_enabled_with_jwt_accepts_either() -> None:
    mode, reason = _choice(
        {"api_key_enabled": True, "jwt_auth_enabled": True, "jwt_module_reference": "auth"}
    )
    assert mode == "either" and "api_key_enabled" in reason


def test_without_it_the_projects_jwt_module_decides() -> None:
    assert _choice({"api_key_enabled": False})[0] == "jwt"
