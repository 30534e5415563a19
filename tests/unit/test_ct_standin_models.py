"""The Control Tower stand-in's model table (tests/standins/ct_models.py), checked directly against
the facts recorded on the real service (tests/standins/ct_recorded/README.md)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "standins"))

from ct_models import MODULE, PROJECT
from ct_moments import iso
from ct_types import Invalid, Moment, plain


def _config(module_type: str, config: Any) -> Any:
    entry = {"module_type": module_type, "name": "m", "config": config}
    return plain(MODULE.check(entry).value["config"])


def test_undeclared_fields_are_dropped_and_defaults_added() -> None:
    module = MODULE.check(
        {
            "module_type": "inference_endpoint",
            "name": "chat",
            "dependencies": ["auth"],
            "auth": {"mode": "none"},
            "config": {"model_name": "m", "api_key": "k", "timeouts": {"read_s": 5}},
        }
    ).value
    assert list(module) == ["module_type", "name", "version", "status", "description", "config"]
    assert module["status"] == "enabled"
    assert plain(module["config"]) == {
        "apisix_route": None,
        "apisix_gateway_module": None,
        "model_name": "m",
        "model_version": "latest",
        "endpoint_url": None,
        "system_prompt": None,
        "max_tokens": 1024,
        "temperature": 0.7,
        "top_p": 0.9,
        "batch_size": 1,
    }


def test_status_null_stays_null() -> None:
    module = MODULE.check({"module_type": "vault", "name": "v", "status": None, "config": {}})
    assert module.value["status"] is None


def test_an_empty_config_stays_an_empty_mapping_whatever_the_type() -> None:
    assert _config("inference_endpoint", {}) == {}
    assert _config("rag_config", {}) == {}


def test_a_config_failing_its_type_is_taken_by_the_model_naming_most_fields() -> None:
    # rag_config lacks vector_store_type: every model naming nothing ties, the first (JWT) wins.
    assert "algorithm" in _config("rag_config", {"embedding_model": "e5"})
    # One field named by MonitoringModule beats the JWT model's none.
    assert "logging_level" in _config("rag_config", {"metrics_enabled": True})


def test_a_converted_value_loses_a_tie_and_nested_models_count() -> None:
    # Security and Monitoring name one field each; Security's needed a conversion ("yes").
    tie = {"encryption_at_rest": "yes", "metrics_enabled": True, "max_tokens": "many"}
    assert "logging_level" in _config("inference_endpoint", tie)
    # VaultModule names 1 + 3 fields (its instance's count too), but converted "2": the plain
    # mapping, exact, wins against it and the input is kept as given.
    nested = {
        "health_check_interval": "x",
        "metrics_enabled": True,
        "vault_instances": [{"instance_name": "m", "vault_url": "u", "kv_version": "2"}],
    }
    assert _config("monitoring", nested) == nested


def test_apisix_gateways_and_generic_ones_take_their_own_models() -> None:
    apisix = _config(
        "api_gateway",
        {
            "gateway_type": "apisix",
            "upstreams": [{"name": "llm", "nodes": {"127.0.0.1:9100": "1"}}],
        },
    )
    assert apisix["upstreams"][0]["nodes"] == {"127.0.0.1:9100": 1}
    assert apisix["upstreams"][0]["timeout"] == {"connect": 30, "send": 30, "read": 30}
    assert _config("api_gateway", {"cors_origins": ["x"]})["gateway_type"] == "generic"


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("512", 512),
        (" 512 ", 512),
        (512.0, 512),
        ("1_024", 1024),
        (True, 1),
    ],
)
def test_integers_given_otherwise_are_converted(given: Any, kept: int) -> None:
    assert _config("inference_endpoint", {"max_tokens": given})["max_tokens"] == kept


def test_unknown_module_types_are_refused_with_fastapis_error() -> None:
    with pytest.raises(Invalid) as refused:
        MODULE.check({"module_type": "bogus", "name": "x", "config": {"a": 1}})
    (error,) = refused.value.errors
    assert error["type"] == "enum"
    assert error["loc"] == ["module_type"]
    assert error["msg"].startswith("Input should be 'jwt_config', 'rag_config'")
    assert error["msg"].endswith("'vault' or 'langgraph_workflow'")


def test_a_config_that_is_no_mapping_reports_every_union_member() -> None:
    with pytest.raises(Invalid) as refused:
        MODULE.check({"module_type": "vault", "name": "x", "config": "text"})
    locs = [error["loc"][-1] for error in refused.value.errors]
    assert locs[0] == "JWTConfigModule"
    assert locs[-1] == "dict[str,any]"
    assert len(locs) == 18


@pytest.mark.parametrize(
    ("given", "written"),
    [
        ("2025-01-01", "2025-01-01T00:00:00"),
        ("2025-01-01 10:00:00.5", "2025-01-01T10:00:00.500000"),
        ("2025-01-01T10:00:00Z", "2025-01-01T10:00:00Z"),
        ("2025-01-01T10:00:00-00:00", "2025-01-01T10:00:00Z"),
        ("2025-01-01T10:00:00+0200", "2025-01-01T10:00:00+02:00"),
        ("2025-01-01T10:00:00.1234567", "2025-01-01T10:00:00.123456"),
        (1700000000, "2023-11-14T22:13:20Z"),
        ("20250101", "1970-08-23T09:01:41Z"),  # digits alone are a unix time
    ],
)
def test_timestamps_read_and_written_as_pydantic_does(given: Any, written: str) -> None:
    assert iso(Moment().check(given).value) == written


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("yesterday", "input is too short"),
        ("2025-13-01", "month value is outside expected range of 1-12"),
        ("2025/01/01", "invalid date separator, expected `-`"),
        ("2025-01-01T25:00", "unexpected extra characters at the end of the input"),
    ],
)
def test_bad_timestamps_are_refused_with_pydantics_reason(given: str, reason: str) -> None:
    with pytest.raises(Invalid) as refused:
        Moment().check(given)
    assert refused.value.errors[0]["ctx"] == {"error": reason}


def test_a_project_without_timestamps_gets_the_current_time() -> None:
    manifest = PROJECT.check({"project_id": "p", "project_name": "n", "modules": []}).value
    assert manifest["created_at"] is not None
    assert manifest["created_at"].tzinfo is None  # naive local time, as the real service
    assert list(manifest) == [
        "project_id",
        "project_name",
        "version",
        "description",
        "owner",
        "tags",
        "environment",
        "environments",
        "created_at",
        "updated_at",
        "modules",
        "metadata",
    ]
