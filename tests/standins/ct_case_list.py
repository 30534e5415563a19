"""The cases, by name: each a list of steps (ct_cases.py) recorded into ct_recorded/<name>.json."""

from __future__ import annotations

from collections.abc import Callable

from ct_cases import (
    Step,
    call,
    delete,
    example,
    file,
    get,
    module,
    post,
    project,
    put,
    round_trip,
    with_fd2_settings,
)

EXTRA = {"undeclared": "dropped?"}  # a field no model declares, added to every config below


def _examples() -> list[Step]:
    acme, demo = example("acme.json"), example("demo.json")
    names = [m["name"] for m in acme["modules"]]
    return [*round_trip(acme, *names), *round_trip(demo, "chat", "embed")]


def _fd2_settings() -> list[Step]:
    return round_trip(with_fd2_settings(example("acme.json")), "chat")


def _every_type() -> list[Step]:
    """Each module type with a full config of its own, undeclared fields at every level."""
    plugin = {"name": "jwt-auth", "config": {"key": "k"}, "priority": 10, **EXTRA}
    route = {
        "name": "chat",
        "uri": "/v1/chat/*",
        "methods": ["POST"],
        "upstream_id": "llm",
        "plugins": [plugin, {"name": "limit-count", "config": {"count": 10}}],
        "vars": [["http_x_env", "==", "dev"]],
        **EXTRA,
    }
    modules = [
        module(
            "jwt_config",
            "auth",
            {
                "secret_key": "s",
                "service_url": "http://127.0.0.1:5000",
                "claims": {"static": {"a": 1}, "undeclared": 2},
                "jwe_config": {"enabled": True},
                **EXTRA,
            },
        ),
        module(
            "rag_config",
            "rag",
            {"vector_store_type": "faiss", "embedding_model": "e5", "chunk_size": 256, **EXTRA},
        ),
        module(
            "rag_service",
            "rag-svc",
            {
                "service_url": "http://127.0.0.1:8080",
                "configuration_name": "docs",
                "jwt_auth_enabled": True,
                "jwt_module_reference": "auth",
                **EXTRA,
            },
        ),
        module(
            "model_server",
            "models",
            {
                "service_url": "http://127.0.0.1:8000",
                "available_embedding_models": ["e5"],
                "api_key": "k",
                **EXTRA,
            },
        ),
        module(
            "api_gateway",
            "generic-gw",
            {"rate_limiting": {"rpm": 60}, "cors_origins": ["*"], **EXTRA},
        ),
        module(
            "api_gateway",
            "apisix-gw",
            {
                "gateway_type": "apisix",
                "routes": [
                    route,
                    {"name": "embed", "uri": "/v1/embeddings", "plugins": {"key-auth": {}}},
                ],
                "upstreams": [{"name": "llm", "nodes": {"127.0.0.1:9100": 1}, **EXTRA}],
                "global_plugins": [{"name": "prometheus"}],
                **EXTRA,
            },
        ),
        module(
            "inference_endpoint",
            "via-apisix",
            {
                "apisix_route": "chat",
                "apisix_gateway_module": "apisix-gw",
                "model_name": "m",
                **EXTRA,
            },
        ),
        module("security", "sec", {"compliance_standards": ["soc2"], **EXTRA}),
        module("monitoring", "mon", {"logging_level": "DEBUG", **EXTRA}),
        module(
            "model_registry",
            "registry",
            {"registry_type": "mlflow", "registry_url": "http://127.0.0.1:5500", **EXTRA},
        ),
        module(
            "data_pipeline",
            "pipe",
            {
                "pipeline_type": "batch",
                "data_sources": ["s3"],
                "data_sinks": ["pg"],
                "processing_engine": "spark",
                **EXTRA,
            },
        ),
        module(
            "deployment",
            "deploy",
            {
                "container_registry": "r",
                "orchestration_platform": "k8s",
                "environment_configs": {"dev": {"replicas": 1}},
                **EXTRA,
            },
        ),
        module("resource_management", "res", {"compute_resources": {"cpu": 2}, **EXTRA}),
        module("notifications", "notify", {"alert_rules": [{"on": "error"}], **EXTRA}),
        module("backup_recovery", "backup", {"backup_frequency": "hourly", **EXTRA}),
        module(
            "vault",
            "vault",
            {
                "vault_instances": [
                    {
                        "instance_name": "main",
                        "vault_url": "http://127.0.0.1:8200",
                        "auth_method": "approle",
                        "role_id": "env:ROLE",
                        **EXTRA,
                    }
                ],
                "cache_ttl": 60,
                **EXTRA,
            },
        ),
        module(
            "langgraph_workflow",
            "flow",
            {
                "workflow_name": "summarise",
                "nodes": [{"id": "a"}],
                "inference_modules": ["via-apisix"],
                **EXTRA,
            },
        ),
    ]
    manifest = project(
        "every-type",
        *modules,
        description="d",
        owner="o",
        tags=["t"],
        api_keys=[{"id": "k"}],
        undeclared_top="x",
    )
    return round_trip(manifest, "auth", "apisix-gw", "vault")


def _defaults_only() -> list[Step]:
    """Each module type with a config naming nothing it declares: defaults, or the union's pick
    when the type's model has required fields."""
    types = [
        "jwt_config",
        "rag_config",
        "rag_service",
        "model_server",
        "api_gateway",
        "inference_endpoint",
        "security",
        "monitoring",
        "model_registry",
        "data_pipeline",
        "deployment",
        "resource_management",
        "notifications",
        "backup_recovery",
        "vault",
        "langgraph_workflow",
    ]
    modules = [module(kind, kind, {"x": 1}) for kind in types]
    modules.append(module("inference_endpoint", "empty", {}))
    modules.append(module("api_gateway", "apisix-empty", {"gateway_type": "apisix"}))
    return round_trip(project("defaults-only", *modules))


def _union_fallback() -> list[Step]:
    """Configs that fail their own type's model: which model the union takes instead."""
    modules = [
        module("rag_config", "rag-missing-field", {"embedding_model": "e5"}),
        module("inference_endpoint", "fraction", {"model_name": "m", "max_tokens": 512.5}),
        module(
            "inference_endpoint",
            "tie-lax",
            {"metrics_enabled": True, "encryption_at_rest": "yes", "max_tokens": "many"},
        ),
        module(
            "monitoring",
            "nested-count",
            {
                "health_check_interval": "x",
                "metrics_enabled": True,
                "vault_instances": [{"instance_name": "m", "vault_url": "u", "kv_version": "2"}],
            },
        ),
        module(
            "rag_service", "first-of-equals", {"service_url": "u", "default_k": "x", "nodes": [1]}
        ),
        module(
            "api_gateway",
            "apisix-bad-route",
            {"gateway_type": "apisix", "routes": [{"uri": "/no-name"}], "cors_enabled": False},
        ),
        module(
            "api_gateway",
            "generic-bad",
            {"gateway_type": "kong", "request_timeout": "slow", "rate_limiting": {"rpm": "60"}},
        ),
    ]
    return round_trip(project("union-fallback", *modules))


def _coercions() -> list[Step]:
    """Numbers and booleans given as strings (and the like) in declared and free-form fields."""
    chat = module(
        "inference_endpoint",
        "chat",
        {
            "model_name": "m",
            "max_tokens": "512",
            "temperature": "0.5",
            "top_p": 1,
            "batch_size": 2.0,
        },
        status=None,
        version=None,
    )
    mon = module(
        "monitoring",
        "mon",
        {
            "metrics_enabled": "yes",
            "tracing_enabled": 0,
            "health_check_interval": " 15 ",
            "alerting_enabled": "off",
        },
    )
    vault = module(
        "vault",
        "vault",
        {
            "vault_instances": [
                {"instance_name": "m", "vault_url": "u", "kv_version": "1", "verify_ssl": "false"}
            ]
        },
    )
    manifest = project(
        "coercions",
        chat,
        mon,
        vault,
        environments={"dev": {"limits": {"requests_per_second": "20"}}},
        metadata={"n": "1", "b": "true"},
    )
    return round_trip(manifest, "chat")


def _statuses() -> list[Step]:
    modules = [
        module("monitoring", s or "absent", {"x": 1}, **({"status": s} if s else {}))
        for s in ("enabled", "disabled", "deprecated", "development", None)
    ]
    modules.append(module("monitoring", "null", {"x": 1}, status=None, description=None))
    return round_trip(project("statuses", *modules))


def _timestamps() -> list[Step]:
    given = project("stamped", created_at="2025-01-01T10:00:00Z", updated_at="2020-01-01")
    dated = project("dated", created_at="2025-01-01", updated_at=None)
    unix = project("unix", created_at=1700000000, updated_at="2025-01-01T10:00:00.5+02:00")
    empty = project("unstamped", created_at=None)
    steps: list[Step] = []
    for manifest in (given, dated, unix, empty):
        steps += [post(manifest), get(f"/manifests/{manifest['project_id']}")]
        steps.append(delete(manifest["project_id"]))
    return steps


def _updates() -> list[Step]:
    first = project("updated", module("monitoring", "mon", {"x": 1}), created_at="2024-05-05")
    second = project("updated", module("security", "sec", {}), owner="new")
    return [
        post(first),
        put("updated", second),
        get("/manifests/updated"),
        put("updated", {**second, "project_id": "other"}),
        put("nowhere", {**second, "project_id": "nowhere"}),
        put("updated", second, secret="wrong"),
        put("updated", second, secret=None),
        put("updated", {**second, "modules": [second["modules"][0]] * 2}),
        delete("updated"),
    ]


def _refusals() -> list[Step]:
    ok = project("refused", module("monitoring", "mon", {"x": 1}))
    return [
        post(ok, secret=None),
        post(ok, secret="wrong"),
        post({**ok, "project_id": "bad id"}),
        post({**ok, "modules": [ok["modules"][0], ok["modules"][0]]}),
        post(ok),
        post(ok),
        get("/manifests/bad.id"),
        get("/manifests/missing"),
        get("/manifests/refused/modules/missing"),
        get("/manifests/missing/modules/mon"),
        call("PATCH", "/manifests/refused"),
        call("GET", "/manifests/refused/other"),
        delete("refused", secret=None),
        delete("refused", secret="wrong"),
        delete("bad.id"),
        delete("refused"),
        delete("refused"),
    ]


def _invalid_bodies() -> list[Step]:
    base = {"project_id": "invalid", "project_name": "x"}
    chat = module("inference_endpoint", "chat", {"model_name": "m"})
    raw = [
        call("POST", "/manifests", body="{not json", content_type="application/json"),
        call("POST", "/manifests", body="[1]", content_type="application/json"),
        call("POST", "/manifests", body='{"manifest": {}}', content_type="text/plain"),
        call("POST", "/manifests", body='{"manifest": 5}'),
        call("POST", "/manifests"),
        call("POST", "/manifests", json={}),
        call("POST", "/manifests", json={"manifest": 5}),
        call("POST", "/manifests", json={"manifest": 5}, secret=None),
    ]
    manifests = [
        {},
        {**base, "modules": [module("bogus", "a", {"x": 1})]},
        {**base, "modules": [module("monitoring", "a", {"x": 1}, status="on")]},
        {**base, "modules": [module("monitoring", 42, {"x": 1})]},
        {**base, "modules": [module("monitoring", "a", None)]},
        {**base, "modules": [{"module_type": "monitoring", "name": "a"}]},
        {**base, "modules": [module("monitoring", "a", "text")]},
        {**base, "modules": ["not a module"]},
        {**base, "modules": {"chat": chat}},
        {"project_id": "invalid", "modules": [chat]},  # the echo shows chat's config filled in
        {
            **base,
            "modules": [],
            "created_at": "yesterday",
            "updated_at": "2025-13-01",
            "tags": "t",
            "environments": {"dev": "x"},
            "metadata": [1],
            "version": 3,
            "project_name": None,
            "owner": 1,
            "description": [],
            "environment": None,
        },
    ]
    return raw + [post(m) for m in manifests]


def _stored_files() -> list[Step]:
    """Files put in the directory by hand: read through the models too."""
    loose = project(
        "loose",
        module(
            "inference_endpoint", "chat", {"model_name": "m", "api_key": "k"}, dependencies=["x"]
        ),
        api_keys=[1],
    )
    broken = project("broken", module("monitoring", 42, {}))
    return [
        file("loose.json", loose),
        get("/manifests/loose"),
        get("/manifests/loose/modules/chat"),
        file("broken.json", broken),
        get("/manifests/broken"),
        file("not-json.json", "{oops"),
        get("/manifests/not-json"),
        file("renamed.json", project("inside-name", module("security", "s", {}))),
        get("/manifests/renamed"),
        get("/manifests/inside-name"),
        get("/manifests"),
        put("broken", broken),
        post(project("broken", module("security", "s", {"x": 1}))),
        get("/manifests/broken"),
        delete("broken"),
        delete("loose"),
        delete("not-json"),
        delete("renamed"),
        get("/manifests"),
    ]


def _validate() -> list[Step]:
    dup = module("monitoring", "m", {"x": 1}, status="disabled")
    manifest = project("bad id", dup, dup, module("security", "s", {}, status="deprecated"))
    return [call("POST", "/manifests/validate", None, json={"manifest": manifest})]


CASES: dict[str, Callable[[], list[Step]]] = {
    "examples": _examples,
    "fd2_settings": _fd2_settings,
    "every_type": _every_type,
    "defaults_only": _defaults_only,
    "union_fallback": _union_fallback,
    "coercions": _coercions,
    "statuses": _statuses,
    "timestamps": _timestamps,
    "updates": _updates,
    "refusals": _refusals,
    "invalid_bodies": _invalid_bodies,
    "stored_files": _stored_files,
    "validate": _validate,
}
