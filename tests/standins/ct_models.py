"""The Control Tower's manifest models as a table: per model its fields, in order, with defaults.

Facts (field names, types, defaults, which validators run) taken from the real service's `app.py`;
what they do to a manifest was recorded against it (tests/standins/ct_recorded). A field a model
does not name is dropped; a field it names but the input lacks gets its default.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

from ct_types import (
    AnyValue,
    Checked,
    Choice,
    Either,
    Field,
    Flag,
    Integer,
    Invalid,
    ListOf,
    MapOf,
    Model,
    Moment,
    Nullable,
    Number,
    Settled,
    Text,
    error,
)

TEXT, INT, FLOAT, BOOL, ANY = Text(), Integer(), Number(), Flag(), AnyValue()
OPT_TEXT, OPT_INT, OPT_FLOAT = Nullable(TEXT), Nullable(INT), Nullable(FLOAT)
TEXTS, MAP = ListOf(TEXT), MapOf(ANY)
OPT_MAP = Nullable(MAP)
MAPS = ListOf(MAP)


def _model(label: str, *fields: tuple[Any, ...], before: Any = None) -> Model:
    """`("name", kind)` is required; `("name", kind, default)`; `("name", kind, list)` etc. with
    a type or a lambda as the default builds it fresh for every manifest (default_factory)."""
    specs = []
    for name, kind, *default in fields:
        if not default:
            specs.append(Field(name, kind))
        else:
            factory = callable(default[0])
            specs.append(Field(name, kind, default[0], factory=factory))
    return Model(label, tuple(specs), before)


JWT_CONFIG = _model(
    "JWTConfigModule",
    ("secret_key", OPT_TEXT, None),
    ("algorithm", TEXT, "HS256"),
    ("expiration_minutes", INT, 30),
    ("issuer", OPT_TEXT, None),
    ("audience", OPT_TEXT, None),
    ("refresh_token_enabled", BOOL, True),
    ("id", OPT_TEXT, None),
    ("owner", OPT_TEXT, None),
    ("service_url", OPT_TEXT, None),
    ("claims", OPT_MAP, None),
    ("jwe_config", OPT_MAP, None),
)
RAG_CONFIG = _model(
    "RAGConfigModule",
    ("vector_store_type", TEXT),
    ("embedding_model", TEXT),
    ("chunk_size", INT, 512),
    ("chunk_overlap", INT, 50),
    ("retrieval_k", INT, 5),
    ("reranker_enabled", BOOL, False),
    ("query_expansion_enabled", BOOL, False),
)
RAG_SERVICE = _model(
    "RAGServiceModule",
    ("service_url", TEXT),
    ("configuration_name", TEXT),
    ("query_endpoint", TEXT, "/query"),
    ("retrieve_endpoint", TEXT, "/retrieve"),
    ("default_k", INT, 5),
    ("default_similarity_threshold", FLOAT, 0.0),
    ("use_reranking", BOOL, False),
    ("filter_after_reranking", BOOL, True),
    ("query_expansion_enabled", BOOL, False),
    ("query_expansion_strategy", OPT_TEXT, None),
    ("query_expansion_llm_config", OPT_TEXT, None),
    ("query_expansion_num_queries", INT, 3),
    ("jwt_auth_enabled", BOOL, False),
    ("jwt_module_reference", OPT_TEXT, None),
    ("request_timeout", INT, 60),
    ("max_retries", INT, 2),
    ("default_metadata_filter", OPT_MAP, None),
)
MODEL_SERVER = _model(
    "ModelServerModule",
    ("service_url", TEXT),
    ("embeddings_endpoint", TEXT, "/embeddings"),
    ("rerank_endpoint", TEXT, "/rerank"),
    ("classify_endpoint", TEXT, "/classify"),
    ("health_endpoint", TEXT, "/health"),
    ("default_embedding_model", OPT_TEXT, None),
    ("default_reranker_model", OPT_TEXT, None),
    ("default_classifier_model", OPT_TEXT, None),
    ("available_embedding_models", TEXTS, list),
    ("available_reranker_models", TEXTS, list),
    ("available_classifier_models", TEXTS, list),
    ("batch_size", INT, 32),
    ("request_timeout", INT, 30),
    ("max_retries", INT, 2),
    ("api_key_enabled", BOOL, False),
    ("api_key", OPT_TEXT, None),
    ("jwt_auth_enabled", BOOL, False),
    ("jwt_module_reference", OPT_TEXT, None),
)


def _not_apisix(config: dict[str, Any]) -> dict[str, Any]:
    if config.get("gateway_type") == "apisix":
        raise Invalid(
            [
                error(
                    "value_error",
                    "Value error, Use APISIXGatewayModule for gateway_type='apisix'",
                    config,
                    {"error": {}},
                )
            ]
        )
    return config


API_GATEWAY = _model(
    "APIGatewayModule",
    ("gateway_type", TEXT, "generic"),
    ("rate_limiting", MapOf(INT), dict),
    ("cors_origins", TEXTS, list),
    ("authentication_required", BOOL, True),
    ("api_versioning", TEXT, "v1"),
    ("request_timeout", INT, 30),
    ("load_balancing_strategy", TEXT, "round_robin"),
    before=_not_apisix,
)
APISIX_PLUGIN = _model(
    "APISIXPlugin",
    ("name", TEXT),
    ("enabled", BOOL, True),
    ("config", MAP, dict),
    ("priority", OPT_INT, None),
)
APISIX_ROUTE = _model(
    "APISIXRoute",
    ("name", TEXT),
    ("uri", TEXT),
    ("methods", TEXTS, lambda: ["GET", "POST"]),
    ("upstream_id", OPT_TEXT, None),
    ("upstream", OPT_MAP, None),
    ("service_id", OPT_TEXT, None),
    ("plugins", Either((ListOf(APISIX_PLUGIN), MAP)), dict),
    ("host", OPT_TEXT, None),
    ("priority", INT, 0),
    ("vars", Nullable(ListOf(TEXTS)), None),
)
APISIX_UPSTREAM = _model(
    "APISIXUpstream",
    ("name", TEXT),
    ("type", TEXT, "roundrobin"),
    ("nodes", MapOf(INT)),
    ("timeout", MapOf(INT), lambda: {"connect": 30, "send": 30, "read": 30}),
    ("retries", INT, 1),
    ("health_check", OPT_MAP, None),
)
APISIX_GATEWAY = _model(
    "APISIXGatewayModule",
    ("gateway_type", TEXT, "apisix"),
    ("admin_api_url", TEXT, "http://localhost:9080"),
    ("admin_key", TEXT, "${APISIX_ADMIN_KEY}"),
    ("gateway_url", TEXT, "http://localhost:9080"),
    ("dashboard_url", OPT_TEXT, "http://localhost:9000"),
    ("routes", ListOf(APISIX_ROUTE), list),
    ("upstreams", ListOf(APISIX_UPSTREAM), list),
    ("consumer", OPT_MAP, None),
    ("service", OPT_MAP, None),
    ("global_plugins", ListOf(APISIX_PLUGIN), list),
    ("jwt_auth_enabled", BOOL, True),
    ("rate_limiting_enabled", BOOL, True),
    ("logging_enabled", BOOL, True),
    ("prometheus_enabled", BOOL, True),
    ("ssl_enabled", BOOL, False),
    ("ssl_cert", OPT_TEXT, None),
    ("ssl_key", OPT_TEXT, None),
    ("cors_enabled", BOOL, True),
    ("cors_origins", TEXTS, lambda: ["*"]),
    ("cors_methods", TEXTS, lambda: ["GET", "POST", "PUT", "DELETE", "OPTIONS"]),
    ("default_timeout", INT, 60),
    ("default_retries", INT, 2),
    ("streaming_enabled", BOOL, True),
    ("response_buffering", BOOL, False),
    ("request_buffering", BOOL, True),
)
INFERENCE_ENDPOINT = _model(
    "InferenceEndpointModule",
    ("apisix_route", OPT_TEXT, None),
    ("apisix_gateway_module", OPT_TEXT, None),
    ("model_name", OPT_TEXT, None),
    ("model_version", OPT_TEXT, "latest"),
    ("endpoint_url", OPT_TEXT, None),
    ("system_prompt", OPT_TEXT, None),
    ("max_tokens", OPT_INT, 1024),
    ("temperature", OPT_FLOAT, 0.7),
    ("top_p", OPT_FLOAT, 0.9),
    ("batch_size", OPT_INT, 1),
)
SECURITY = _model(
    "SecurityModule",
    ("encryption_at_rest", BOOL, True),
    ("encryption_in_transit", BOOL, True),
    ("vulnerability_scanning", BOOL, True),
    ("access_control_type", TEXT, "rbac"),
    ("audit_logging", BOOL, True),
    ("compliance_standards", TEXTS, list),
)
MONITORING = _model(
    "MonitoringModule",
    ("metrics_enabled", BOOL, True),
    ("logging_level", TEXT, "INFO"),
    ("tracing_enabled", BOOL, True),
    ("health_check_interval", INT, 30),
    ("alerting_enabled", BOOL, True),
    ("dashboard_url", OPT_TEXT, None),
)
MODEL_REGISTRY = _model(
    "ModelRegistryModule",
    ("registry_type", TEXT),
    ("registry_url", TEXT),
    ("auto_versioning", BOOL, True),
    ("model_validation", BOOL, True),
    ("metadata_tracking", BOOL, True),
    ("experiment_tracking", BOOL, True),
)
DATA_PIPELINE = _model(
    "DataPipelineModule",
    ("pipeline_type", TEXT),
    ("data_sources", TEXTS),
    ("data_sinks", TEXTS),
    ("processing_engine", TEXT),
    ("schedule", OPT_TEXT, None),
    ("data_quality_checks", BOOL, True),
)
DEPLOYMENT = _model(
    "DeploymentModule",
    ("deployment_strategy", TEXT, "blue_green"),
    ("container_registry", TEXT),
    ("orchestration_platform", TEXT),
    ("auto_scaling", BOOL, True),
    ("rollback_enabled", BOOL, True),
    ("environment_configs", MapOf(MAP), dict),
)
RESOURCE_MANAGEMENT = _model(
    "ResourceManagementModule",
    ("compute_resources", MAP, dict),
    ("storage_resources", MAP, dict),
    ("network_resources", MAP, dict),
    ("auto_scaling_policies", MAP, dict),
    ("cost_optimization", BOOL, True),
    ("resource_quotas", MAP, dict),
)
NOTIFICATIONS = _model(
    "NotificationModule",
    ("email_enabled", BOOL, True),
    ("slack_enabled", BOOL, False),
    ("webhook_enabled", BOOL, False),
    ("notification_channels", MAP, dict),
    ("alert_rules", MAPS, list),
    ("escalation_policies", MAPS, list),
)
BACKUP_RECOVERY = _model(
    "BackupRecoveryModule",
    ("backup_enabled", BOOL, True),
    ("backup_frequency", TEXT, "daily"),
    ("retention_policy", TEXT, "30d"),
    ("disaster_recovery_enabled", BOOL, True),
    ("backup_storage_type", TEXT, "cloud"),
    ("restore_testing", BOOL, True),
)
VAULT_INSTANCE = _model(
    "VaultInstanceConfig",
    ("instance_name", TEXT),
    ("vault_url", TEXT),
    ("vault_namespace", OPT_TEXT, None),
    ("auth_method", TEXT, "token"),
    ("vault_token", OPT_TEXT, None),
    ("role_id", OPT_TEXT, None),
    ("secret_id", OPT_TEXT, None),
    ("kv_mount_point", TEXT, "secret"),
    ("kv_version", INT, 2),
    ("verify_ssl", BOOL, True),
    ("timeout", INT, 30),
)
VAULT = _model(
    "VaultModule",
    ("vault_instances", ListOf(VAULT_INSTANCE), list),
    ("vault_config_file", OPT_TEXT, None),
    ("secrets_config_file", OPT_TEXT, None),
    ("encryption_enabled", BOOL, True),
    ("encryption_key_source", TEXT, "env:ENCRYPTION_KEY"),
    ("cache_secrets", BOOL, True),
    ("cache_ttl", INT, 300),
    ("allow_env_fallback", BOOL, True),
    ("fail_on_missing_secret", BOOL, True),
)
LANGGRAPH_WORKFLOW = _model(
    "LangGraphWorkflowModule",
    ("workflow_name", TEXT),
    ("workflow_type", TEXT, "sequential"),
    ("nodes", MAPS, list),
    ("edges", MAPS, list),
    ("state_schema", MAP, dict),
    ("jwt_module", OPT_TEXT, None),
    ("inference_modules", TEXTS, list),
    ("max_iterations", INT, 10),
    ("timeout_seconds", INT, 300),
    ("enable_checkpointing", BOOL, False),
    ("retry_on_error", BOOL, True),
    ("max_retries", INT, 3),
    ("tracing_enabled", BOOL, True),
    ("log_intermediate_results", BOOL, True),
)

# The module types, in the Control Tower's order (its enum, and so its error message).
CONFIG_BY_TYPE: dict[str, Model] = {
    "jwt_config": JWT_CONFIG,
    "rag_config": RAG_CONFIG,
    "rag_service": RAG_SERVICE,
    "model_server": MODEL_SERVER,
    "api_gateway": API_GATEWAY,
    "inference_endpoint": INFERENCE_ENDPOINT,
    "security": SECURITY,
    "monitoring": MONITORING,
    "model_registry": MODEL_REGISTRY,
    "data_pipeline": DATA_PIPELINE,
    "deployment": DEPLOYMENT,
    "resource_management": RESOURCE_MANAGEMENT,
    "notifications": NOTIFICATIONS,
    "backup_recovery": BACKUP_RECOVERY,
    "vault": VAULT,
    "langgraph_workflow": LANGGRAPH_WORKFLOW,
}
STATUSES = ("enabled", "disabled", "deprecated", "development")

# `ModuleConfig.config`: the union in its declared order (APISIX before the generic gateway), with
# a free-form mapping last.
CONFIG_UNION = Either(
    (
        JWT_CONFIG,
        RAG_CONFIG,
        RAG_SERVICE,
        MODEL_SERVER,
        APISIX_GATEWAY,
        API_GATEWAY,
        INFERENCE_ENDPOINT,
        SECURITY,
        MONITORING,
        MODEL_REGISTRY,
        DATA_PIPELINE,
        DEPLOYMENT,
        RESOURCE_MANAGEMENT,
        NOTIFICATIONS,
        BACKUP_RECOVERY,
        VAULT,
        LANGGRAPH_WORKFLOW,
        MapOf(ANY),
    )
)


class _Config:
    label = "config"

    def check(self, value: Any) -> Checked:
        return value.checked if isinstance(value, Settled) else CONFIG_UNION.check(value)


def _config_of_type(module: dict[str, Any]) -> dict[str, Any]:
    """ModuleConfig's before-validator: a non-empty config is first tried against its module
    type's model; only when that fails does the union choose (often another model).

    Like the real one it writes its result into the input itself, so a 422 that echoes the input
    shows such configs already filled in with their defaults."""
    kind, config = module.get("module_type"), module.get("config")
    if not kind or not config:
        return module
    if kind == "api_gateway" and isinstance(config, dict):
        model = APISIX_GATEWAY if config.get("gateway_type") == "apisix" else API_GATEWAY
    elif isinstance(kind, str) and kind in CONFIG_BY_TYPE:
        model = CONFIG_BY_TYPE[kind]
    else:
        return module
    with contextlib.suppress(Invalid):  # left to the union, as the real validator does
        module["config"] = Settled(model.check(config))
    return module


MODULE = _model(
    "ModuleConfig",
    ("module_type", Choice(tuple(CONFIG_BY_TYPE))),
    ("name", TEXT),
    ("version", OPT_TEXT, "1.0.0"),
    ("status", Nullable(Choice(STATUSES)), "enabled"),
    ("description", OPT_TEXT, None),
    ("config", _Config()),
    before=_config_of_type,
)
# created_at/updated_at default to the local time (naive) at which the manifest is checked: on
# every read of a stored manifest that lacks them.
PROJECT = _model(
    "ProjectManifest",
    ("project_id", TEXT),
    ("project_name", TEXT),
    ("version", OPT_TEXT, "1.0.0"),
    ("description", OPT_TEXT, None),
    ("owner", OPT_TEXT, None),
    ("tags", Nullable(TEXTS), list),
    ("environment", OPT_TEXT, "development"),
    ("environments", Nullable(MapOf(MAP)), dict),
    ("created_at", Nullable(Moment()), datetime.now),
    ("updated_at", Nullable(Moment()), datetime.now),
    ("modules", ListOf(MODULE)),
    ("metadata", OPT_MAP, dict),
)
REQUEST = _model("ManifestRequest", ("manifest", PROJECT))
