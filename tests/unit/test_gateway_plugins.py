"""compile_apisix_route: every plugin fd2 applies, both plugin forms, and what it leaves out."""

from __future__ import annotations

from typing import Any

import pytest

from fd2.control.gateway import GatewayRoute, compile_apisix_route
from fd2.control.gateway.route import (
    HeaderOp,
    JwtAuthSpec,
    LimitRule,
    Node,
    PromptTemplate,
    RequestIdSpec,
    UpstreamTimeouts,
    Variable,
)
from fd2.control.secrets import Secret
from fd2.serving.errors import ConfigError

NODES = {"127.0.0.1:9100": 1}


def with_plugins(plugins: Any, **extra: Any) -> GatewayRoute:
    config = {
        "gateway_type": "apisix",
        "routes": [
            {
                "name": "chat",
                "uri": "/sas2py/convert",
                "upstream": {"nodes": NODES},
                "plugins": plugins,
            }
        ],
        **extra,
    }
    return compile_apisix_route(config, "chat")


def refused(plugins: Any, **extra: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        with_plugins(plugins, **extra)
    return caught.value.message


def as_list(plugins: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"name": name, "enabled": True, "config": config} for name, config in plugins.items()]


# --- both forms ---------------------------------------------------------------------------------

SAMPLE = {
    "jwt-auth": {},
    "request-id": {"header_name": "X-Request-Id", "include_in_response": True},
    "prometheus": {"prefer_name": True},
    "proxy-rewrite": {"uri": "/openai/v1/chat/completions", "host": "api.groq.com"},
    "response-rewrite": {"headers": {"remove": ["Content-Encoding"]}},
    "serverless-pre-function": {"phase": "access", "functions": ["return function() end"]},
}


@pytest.mark.parametrize("form", [dict, as_list])
def test_both_plugin_forms_compile_alike(form: Any) -> None:
    result = with_plugins(form(SAMPLE))
    assert result.implemented_plugins == (
        "jwt-auth",
        "prometheus",
        "proxy-rewrite",
        "request-id",
    )
    assert result.unimplemented_plugins == ("response-rewrite", "serverless-pre-function")
    assert result.path == "/openai/v1/chat/completions"
    assert result.host == "api.groq.com"


def test_disabled_plugins_are_left_out_in_either_form() -> None:
    listed = [
        {"name": "cors", "enabled": False, "config": {}},
        {"name": "request-id", "enabled": False},
        {"name": "prometheus"},
    ]
    assert with_plugins(listed).implemented_plugins == ("prometheus",)
    assert with_plugins(listed).request_id is None
    as_dict = {"cors": {"_meta": {"disable": True}}, "prometheus": {"_meta": {"priority": 1}}}
    result = with_plugins(as_dict)
    assert result.implemented_plugins == ("prometheus",)
    assert result.unimplemented_plugins == ()


def test_a_filter_on_an_applied_plugin_is_refused() -> None:
    message = refused({"proxy-rewrite": {"uri": "/x", "_meta": {"filter": [["arg_a", "==", "1"]]}}})
    assert "filter" in message


def test_a_plugin_listed_twice_is_refused() -> None:
    assert "twice" in refused([{"name": "prometheus"}, {"name": "prometheus"}])


def test_a_plugin_config_must_be_an_object() -> None:
    assert "object" in refused({"proxy-rewrite": "uri=/x"})
    assert "plugins" in refused("proxy-rewrite")


def test_global_plugins_apply_under_the_routes_own() -> None:
    result = with_plugins(
        {"request-id": {"header_name": "X-Route"}},
        global_plugins=[
            {"name": "prometheus", "config": {}},
            {"name": "request-id", "config": {"header_name": "X-Global"}},
            {"name": "cors", "config": {}},
        ],
    )
    assert result.request_id == RequestIdSpec("x-route")
    assert result.implemented_plugins == ("prometheus", "request-id")
    assert result.unimplemented_plugins == ("cors",)


def test_unimplemented_access_plugins_are_singled_out() -> None:
    result = with_plugins({"jwe-decrypt": {}, "key-auth": {}, "cors": {}, "gzip": {}})
    assert result.unimplemented_plugins == ("cors", "gzip", "jwe-decrypt", "key-auth")
    assert result.unimplemented_auth_plugins == ("jwe-decrypt", "key-auth")


# --- proxy-rewrite ------------------------------------------------------------------------------


def test_flat_headers_are_set_and_empty_ones_removed() -> None:
    result = with_plugins(
        {
            "proxy-rewrite": {
                "uri": "/v1/chat/completions",
                "headers": {"Accept-Encoding": "identity", "X-Drop": "", "X-Version": 2},
            }
        }
    )
    assert result.headers == (
        HeaderOp("set", "accept-encoding", ("identity",)),
        HeaderOp("remove", "x-drop"),
        HeaderOp("set", "x-version", ("2",)),
    )


def test_structured_headers_run_add_then_remove_then_set() -> None:
    result = with_plugins(
        {
            "proxy-rewrite": {
                "uri": "/v1/chat/completions",
                "headers": {
                    "set": {"X-Set": "s"},
                    "remove": ["X-Gone"],
                    "add": {"X-Added": "a"},
                },
            }
        }
    )
    assert result.headers == (
        HeaderOp("add", "x-added", ("a",)),
        HeaderOp("remove", "x-gone"),
        HeaderOp("set", "x-set", ("s",)),
    )


def test_credential_headers_keep_their_token_secret() -> None:
    result = with_plugins(
        {"proxy-rewrite": {"uri": "/v", "headers": {"Authorization": "Bearer gsk-test-123"}}}
    )
    (op,) = result.headers
    assert op.value[0] == "Bearer "
    assert isinstance(op.value[1], Secret)
    assert op.value[1].reveal() == "gsk-test-123"
    assert "gsk-test-123" not in repr(result)
    assert "gsk-test-123" not in str(result.describe())


def test_a_secret_header_value_stays_a_secret() -> None:
    key = Secret("Bearer sk-whole", "env:KEY")
    result = with_plugins({"proxy-rewrite": {"uri": "/v", "headers": {"set": {"X-Api-Key": key}}}})
    assert result.headers == (HeaderOp("set", "x-api-key", (key,)),)


def test_a_reference_inside_a_longer_header_value_is_refused() -> None:
    message = refused(
        {"proxy-rewrite": {"uri": "/v", "headers": {"Authorization": "Bearer env:GROQ_KEY"}}}
    )
    assert "secret reference" in message


def test_header_variables() -> None:
    result = with_plugins(
        {
            "proxy-rewrite": {
                "uri": "/v",
                "headers": {
                    "set": {
                        "Authorization": "Bearer $http_x_groq_api_key",
                        "X-Caller": "${remote_addr}/$request_id/$request_method/$arg_user",
                        "X-Price": "\\$5",
                    }
                },
            }
        }
    )
    assert result.headers == (
        HeaderOp("set", "authorization", ("Bearer ", Variable("http", "x-groq-api-key"))),
        HeaderOp(
            "set",
            "x-caller",
            (
                Variable("remote_addr"),
                "/",
                Variable("request_id"),
                "/",
                Variable("request_method"),
                "/",
                Variable("arg", "user"),
            ),
        ),
        HeaderOp("set", "x-price", ("$5",)),
    )


def test_unsupported_variables_are_named() -> None:
    message = refused(
        {"proxy-rewrite": {"uri": "/v", "headers": {"X-A": "$consumer_name $balancer_ip $1"}}}
    )
    assert "$consumer_name" in message
    assert "$balancer_ip" in message
    assert "$1" in message  # no regex_uri: no groups


@pytest.mark.parametrize("header", ["authorization", "x_api_key", "api_key"])
def test_copying_the_callers_credential_upstream_is_refused(header: str) -> None:
    message = refused({"proxy-rewrite": {"uri": "/v", "headers": {"X-A": f"${'http_' + header}"}}})
    assert "credential" in message


def test_regex_uri_rewrites_the_route_uri_and_lends_its_groups() -> None:
    result = with_plugins(
        {
            "proxy-rewrite": {
                "regex_uri": ["^/nomatch/(.*)", "/x/$1", "^/(\\w+)/(\\w+)$", "/openai/v1/$2/${1}"],
                "headers": {"X-Project": "$1", "X-Whole": "$9"},
            }
        }
    )
    assert result.path == "/openai/v1/convert/sas2py"
    assert result.headers == (
        HeaderOp("set", "x-project", ("sas2py",)),
        HeaderOp("remove", "x-whole"),  # a group that does not exist is empty
    )


def test_regex_uri_without_a_match_keeps_the_uri() -> None:
    result = with_plugins({"proxy-rewrite": {"regex_uri": ["^/other", "/x"]}})
    assert result.path == "/sas2py/convert"


def test_uri_wins_over_regex_uri() -> None:
    result = with_plugins({"proxy-rewrite": {"uri": "/a", "regex_uri": ["^/(.*)", "/b/$1"]}})
    assert result.path == "/a"
    assert "route 'chat'.proxy-rewrite.regex_uri" in result.ignored


def test_a_host_header_in_set_is_the_host() -> None:
    result = with_plugins({"proxy-rewrite": {"uri": "/v", "headers": {"Host": "api.groq.com"}}})
    assert result.host == "api.groq.com"
    assert result.headers == ()


def test_proxy_rewrite_scheme_applies_to_nodes() -> None:
    result = with_plugins({"proxy-rewrite": {"uri": "/v", "scheme": "https"}})
    assert result.nodes == (Node("https", "127.0.0.1", 9100, 1),)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"uri": "/v/$arg_x"}, "fixed path"),
        ({"uri": "relative"}, "fixed path"),
        ({"regex_uri": ["^/(.*)"]}, "pairs"),
        ({"regex_uri": ["^/(", "/x"]}, "pattern"),
        ({"method": "GET"}, "POST"),
        ({"host": "a b"}, "host"),
        ({"headers": {"Content-Length": "1"}}, "managed"),
        ({"headers": {"Bad Name": "1"}}, "header name"),
        ({"headers": {"add": {"Host": "x"}}}, "Host"),
        ({"headers": {"remove": "X-A", "set": {"X-B": "1"}}}, "list"),
        ({"headers": {"set": ["X-A"]}}, "object"),
        ({"headers": {"X-A": {"nested": 1}}}, "string"),
    ],
)
def test_unusable_proxy_rewrites_are_refused(config: dict[str, Any], expected: str) -> None:
    assert expected in refused({"proxy-rewrite": config})


# --- ai-proxy -------------------------------------------------------------------------------------


def test_ai_proxy_to_a_provider() -> None:
    result = with_plugins(
        {
            "ai-proxy": {
                "provider": "openai",
                "auth": {"header": {"Authorization": "Bearer sk-1"}},
                "options": {"model": "gpt-4o-mini", "temperature": 0.2, "stream": True},
                "timeout": 5000,
            },
            "proxy-rewrite": {"uri": "/ignored", "headers": {"X-Kept": "1"}},
        }
    )
    assert result.provider == "openai"
    assert result.nodes == (Node("https", "api.openai.com", 443, 1),)
    assert result.path == "/v1/chat/completions"
    assert result.model == "gpt-4o-mini"
    assert result.body_options == (("temperature", 0.2),)
    assert result.timeouts == UpstreamTimeouts(connect_s=5, send_s=5, read_s=5)
    assert result.retries == 0
    # proxy-rewrite's headers first, then ai-proxy's credentials over them.
    assert [op.name for op in result.headers] == ["x-kept", "authorization"]
    assert isinstance(result.headers[1].value[0], Secret)
    assert "route 'chat'.ai-proxy.options.stream" in result.ignored
    assert any("upstream (ai-proxy" in item for item in result.ignored)
    assert any("proxy-rewrite.uri (ai-proxy" in item for item in result.ignored)


def test_ai_proxy_override_endpoint_and_query_auth() -> None:
    result = with_plugins(
        {
            "ai-proxy": {
                "provider": "azure-openai",
                "auth": {"header": {"api-key": "k1"}, "query": {"api-version": "old", "sig": "s"}},
                "override": {
                    "endpoint": "http://127.0.0.1:9200/openai/deployments/g/chat/completions"
                    "?api-version=2024-02-15"
                },
            }
        }
    )
    assert result.nodes == (Node("http", "127.0.0.1", 9200, 1),)
    assert result.path == "/openai/deployments/g/chat/completions"
    query = {name: value for name, value in result.query}
    assert query["api-version"] == "2024-02-15"  # the endpoint's own query wins
    assert isinstance(query["sig"], Secret)
    assert result.headers[0].name == "api-key"


def test_ai_proxy_before_apisix_3_12() -> None:
    result = with_plugins(
        {
            "ai-proxy": {
                "auth": {"header": {"Authorization": "Bearer x"}},
                "model": {"provider": "deepseek", "name": "deepseek-chat", "options": {"top_p": 1}},
            }
        }
    )
    assert result.provider == "deepseek"
    assert result.model == "deepseek-chat"
    assert result.body_options == (("top_p", 1),)
    assert result.path == "/chat/completions"


def test_ai_proxy_does_not_need_a_fixed_route_uri() -> None:
    config = {
        "routes": [
            {
                "name": "any",
                "uri": "/llm/*",
                "plugins": {"ai-proxy": {"provider": "openai", "auth": {"header": {"A": "b"}}}},
            }
        ]
    }
    assert compile_apisix_route(config, "any").path == "/v1/chat/completions"


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"provider": "anthropic"}, "conversion"),
        ({"provider": "bedrock"}, "conversion"),
        ({"provider": "openai-compatible"}, "override.endpoint"),
        ({"provider": "martian"}, "unknown"),
        ({}, "no provider"),
        ({"provider": "openai", "options": {"model": 4}}, "model"),
        ({"provider": "openai", "auth": {"gcp": {}}}, "gcp"),
        ({"provider": "openai", "auth": {"header": {"bad name": "x"}}}, "valid name"),
        ({"provider": "openai", "override": {"endpoint": "api.example.com"}}, "absolute"),
    ],
)
def test_unusable_ai_proxies_are_refused(config: dict[str, Any], expected: str) -> None:
    assert expected in refused({"ai-proxy": config})


# --- ai-prompt-template ---------------------------------------------------------------------------


def test_prompt_templates() -> None:
    result = with_plugins(
        {
            "ai-prompt-template": {
                "templates": [
                    {
                        "name": "converter",
                        "template": {
                            "model": "llama-3.1-8b-instant",
                            "messages": [
                                {"role": "system", "content": "Convert to {{ language }}."},
                                {"role": "user", "content": "{{user_input}}"},
                            ],
                        },
                    },
                    {"name": "bare", "template": {}},
                ],
                "_meta": {"priority": 2520},
            }
        }
    )
    assert result.templates == (
        PromptTemplate(
            "converter",
            "llama-3.1-8b-instant",
            (("system", "Convert to {{ language }}."), ("user", "{{user_input}}")),
            frozenset({"language", "user_input"}),
        ),
        PromptTemplate("bare", None, (), frozenset()),
    )
    assert result.template("bare") is not None
    assert result.template("nope") is None


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"templates": []}, "empty"),
        ({}, "invalid"),
        ({"templates": [{"name": "a", "template": {}}, {"name": "a", "template": {}}]}, "two"),
        (
            {
                "templates": [
                    {"name": "a", "template": {"messages": [{"role": "tool", "content": "x"}]}}
                ]
            },
            "role",
        ),
        (
            {
                "templates": [
                    {"name": "a", "template": {"messages": [{"role": "user", "content": ""}]}}
                ]
            },
            "empty",
        ),
    ],
)
def test_unusable_templates_are_refused(config: dict[str, Any], expected: str) -> None:
    assert expected in refused({"ai-prompt-template": config})


# --- request-id -----------------------------------------------------------------------------------


def test_request_id_defaults_and_settings() -> None:
    assert with_plugins({"request-id": {}}).request_id == RequestIdSpec(
        "x-request-id", True, "uuid"
    )
    custom = {"header_name": "X-Trace-Id", "include_in_response": False, "algorithm": "nanoid"}
    assert with_plugins({"request-id": custom}).request_id == RequestIdSpec(
        "x-trace-id", False, "nanoid"
    )
    assert "header_name" in refused({"request-id": {"header_name": "bad name"}})


# --- jwt-auth -------------------------------------------------------------------------------------


CONSUMER = {
    "username": "consumer",
    "plugins": {"jwt-auth": {"key": "sas2py-consumer-key", "secret": "your-secret-key-here"}},
}


@pytest.mark.parametrize("form", [dict, as_list])
def test_jwt_auth_exposes_the_consumer_key_and_secret(form: Any) -> None:
    consumer = {**CONSUMER, "plugins": form(CONSUMER["plugins"])}
    result = with_plugins({"jwt-auth": {}}, consumer=consumer)
    spec = result.jwt_auth
    assert spec is not None
    assert spec.consumer == "consumer"
    assert spec.key == "sas2py-consumer-key"
    assert isinstance(spec.secret, Secret)
    assert spec.secret.reveal() == "your-secret-key-here"
    assert spec.algorithm == "HS256"
    assert spec.key_claim_name == "key"
    assert spec.header == "authorization"
    assert "your-secret-key-here" not in repr(result)
    assert "your-secret-key-here" not in str(result.describe())


def test_jwt_auth_keeps_a_resolved_secret_as_is() -> None:
    secret = Secret("from-vault", "vault:secret/data/x#k")
    consumer = {"plugins": {"jwt-auth": {"key": "k", "secret": secret}}}
    spec = with_plugins({"jwt-auth": {"key_claim_name": "kid2"}}, consumer=consumer).jwt_auth
    assert spec is not None
    assert spec.secret is secret
    assert spec.key_claim_name == "kid2"


def test_jwt_auth_without_a_consumer_still_requires_a_token() -> None:
    spec = with_plugins({"jwt-auth": {"header": "X-Token"}}).jwt_auth
    assert spec == JwtAuthSpec(header="x-token")


def test_jwt_auth_with_a_public_key() -> None:
    consumer = {"plugins": {"jwt-auth": {"key": "k", "algorithm": "RS256", "public_key": "PEM"}}}
    spec = with_plugins({"jwt-auth": {}}, consumer=consumer).jwt_auth
    assert spec is not None
    assert (spec.algorithm, spec.public_key, spec.secret) == ("RS256", "PEM", None)


@pytest.mark.parametrize(
    ("credential", "expected"),
    [
        ({"key": "k"}, "no secret"),
        ({"key": "k", "secret": ""}, "no secret"),
        ({"key": "k", "algorithm": "RS256"}, "public_key"),
        ({"key": "k", "secret": "s", "algorithm": "none"}, "not supported"),
        ({"secret": "s"}, "invalid"),
    ],
)
def test_unusable_consumers_are_refused(credential: dict[str, Any], expected: str) -> None:
    consumer = {"plugins": {"jwt-auth": credential}}
    assert expected in refused({"jwt-auth": {}}, consumer=consumer)


# --- limits ---------------------------------------------------------------------------------------


def test_limit_count_and_limit_req_as_plain_numbers() -> None:
    result = with_plugins(
        {
            "limit-count": {
                "count": 100,
                "time_window": 60,
                "key_type": "var",
                "key": "consumer_name",
                "rejected_code": 429,
                "show_limit_quota_header": False,
            },
            "limit-req": {"rate": 100, "burst": 50, "rejected_msg": "slow down"},
        }
    )
    assert result.limits == (
        LimitRule(
            plugin="limit-count",
            limit=100,
            window_s=60.0,
            key="consumer_name",
            rejected_code=429,
            show_headers=False,
        ),
        LimitRule(
            plugin="limit-req",
            limit=51,
            window_s=0.51,
            rejected_msg="slow down",
            rate=100,
            burst=50,
        ),
    )
    assert result.describe()["limits"] == [
        {"plugin": "limit-count", "limit": 100, "window_s": 60.0},
        {"plugin": "limit-req", "limit": 51, "window_s": 0.51},
    ]


@pytest.mark.parametrize(
    "plugins",
    [
        {"limit-count": {"count": 0, "time_window": 60}},
        {"limit-count": {"count": 10}},
        {"limit-count": {"count": 10, "time_window": 60, "rejected_code": 99}},
        {"limit-req": {"rate": 0, "burst": 1}},
        {"limit-req": {"rate": 1, "burst": -1}},
    ],
)
def test_unusable_limits_are_refused(plugins: dict[str, Any]) -> None:
    assert "invalid" in refused(plugins)


# --- what /admin/routes shows ---------------------------------------------------------------------


def test_describe_is_json_safe_and_names_what_is_not_applied() -> None:
    result = with_plugins(SAMPLE, consumer=CONSUMER)
    described = result.describe()
    assert described["route"] == "chat"
    assert described["upstream"] == {
        "type": "roundrobin",
        "nodes": {"http://127.0.0.1:9100": 1},
        "path": "/openai/v1/chat/completions",
        "retries": 0,
    }
    assert described["unimplemented_plugins"] == ["response-rewrite", "serverless-pre-function"]
    assert described["jwt_auth"] == {"consumer_key": "sas2py-consumer-key", "algorithm": "HS256"}
