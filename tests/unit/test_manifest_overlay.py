"""fd2's settings under `metadata.fd2`: what the Control Tower keeps, folded into each module."""

import json

import pytest

from fd2.control.dependencies import dependency_names
from fd2.control.manifests.compile import declarations
from fd2.control.manifests.decode import ManifestError, decode_manifest


def manifest(modules, metadata=None, **extra):
    raw = {"project_id": "p", "modules": modules, "metadata": metadata or {}, **extra}
    return decode_manifest(json.dumps(raw).encode(), origin="test")


def by_name(decoded):
    return {d.module: d for d in declarations(decoded, origin="test", default_env="development")}


CHAT = {"module_type": "inference_endpoint", "name": "chat", "config": {"model_name": "m"}}


def test_a_null_status_is_served_as_enabled():
    decoded = manifest([{**CHAT, "status": None}])
    assert by_name(decoded)["chat"].status == "enabled"


def test_the_overlay_supplies_what_the_control_tower_drops():
    metadata = {
        "cost_center": "kept as it is",
        "fd2": {
            "api_keys": [{"id": "k", "hash": "ab" * 32}],
            "modules": {
                "chat": {
                    "auth": {"mode": "api_key"},
                    "limits": {"requests_per_second": 5},
                    "dependencies": ["auth"],
                    "config": {"api_key": "env:KEY", "max_tokens": 99},
                }
            },
        },
    }
    jwt = {"module_type": "jwt_config", "name": "auth", "config": {}}
    chat = by_name(manifest([{**CHAT, "config": {"max_tokens": 1024}}, jwt], metadata))["chat"]
    assert chat.entry.auth == {"mode": "api_key"}
    assert chat.entry.limits == {"requests_per_second": 5}
    assert chat.entry.dependencies == ["auth"]
    # The overlay wins over config values (the Control Tower writes its own defaults there).
    assert chat.entry.config == {"max_tokens": 99, "api_key": "env:KEY"}
    assert chat.api_keys == ({"id": "k", "hash": "ab" * 32},)


@pytest.mark.parametrize(
    ("fd2", "message"),
    [
        ({"modules": {"chat": {"auht": {}}}}, "auht"),
        ({"modules": {"nope": {"auth": {"mode": "none"}}}}, "nope"),
        ({"keys": []}, "keys"),
        ({"modules": {"chat": {"dependencies": "auth"}}}, "dependencies"),
    ],
)
def test_a_bad_overlay_rejects_the_manifest_naming_the_problem(fd2, message):
    with pytest.raises(ManifestError, match=message):
        manifest([CHAT], {"fd2": fd2})


def test_a_setting_in_both_places_is_refused_rather_than_guessed():
    with pytest.raises(ManifestError, match="both"):
        manifest(
            [{**CHAT, "auth": {"mode": "none"}}],
            {"fd2": {"modules": {"chat": {"auth": {"mode": "jwt"}}}}},
        )


def test_config_fields_that_name_modules_are_dependencies():
    gateway = {**CHAT, "config": {"apisix_gateway_module": "gw", "apisix_route": "r"}}
    assert dependency_names(manifest([gateway]).modules[0]) == ("gw",)
    rag = {
        "module_type": "rag_service",
        "name": "rag",
        "config": {"jwt_auth_enabled": True, "jwt_module_reference": "auth"},
    }
    assert dependency_names(manifest([rag]).modules[0]) == ("auth",)
    # The Control Tower writes jwt_auth_enabled: false by default: then the reference is inert.
    off = {**rag, "config": {"jwt_auth_enabled": False, "jwt_module_reference": "auth"}}
    assert dependency_names(manifest([off]).modules[0]) == ()


def test_cache_redaction_and_audit_blocks_come_from_the_overlay():
    blocks = {"cache": {"ttl_s": 30}, "redaction": {}, "audit": {"content": True}}
    entry = by_name(manifest([CHAT], {"fd2": {"modules": {"chat": blocks}}}))["chat"].entry
    assert (entry.cache, entry.redaction, entry.audit) == ({"ttl_s": 30}, {}, {"content": True})
    with pytest.raises(ManifestError, match="cache"):
        manifest([{**CHAT, "cache": {}}], {"fd2": {"modules": {"chat": {"cache": {}}}}})


def test_a_type_the_control_tower_cannot_store_is_declared_whole_in_the_overlay():
    analyze = {
        "module_type": "structured_prompt",
        "status": "enabled",
        "config": {"inference_module": "chat"},
        "dependencies": ["chat"],
        "auth": {"mode": "api_key"},
    }
    decoded = manifest([CHAT], {"fd2": {"modules": {"analyze": analyze}}})
    found = by_name(decoded)
    assert set(found) == {"chat", "analyze"}
    assert found["analyze"].module_type == "structured_prompt"
    assert found["analyze"].entry.config == {"inference_module": "chat"}
    assert list(dependency_names(found["analyze"].entry)) == ["chat"]


def test_a_listed_module_keeps_its_type_and_an_unlisted_one_needs_one():
    with pytest.raises(ManifestError, match="keeps"):
        manifest([CHAT], {"fd2": {"modules": {"chat": {"module_type": "structured_prompt"}}}})
    with pytest.raises(ManifestError, match="needs its module_type"):
        manifest([CHAT], {"fd2": {"modules": {"ghost": {"config": {}}}}})
