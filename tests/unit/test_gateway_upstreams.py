"""compile_apisix_route: which route, which upstream, which nodes, and the errors in between."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from fd2.control.gateway import GatewayRoute, compile_apisix_route
from fd2.control.gateway.route import Balancer, Node, UpstreamTimeouts
from fd2.serving.errors import ConfigError


def gateway(*routes: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"gateway_type": "apisix", "routes": list(routes), **extra}


def route(name: str = "chat", **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "uri": "/acme/chat",
        "methods": ["POST"],
        "upstream": {"type": "roundrobin", "nodes": {"127.0.0.1:9100": 1}},
        **fields,
    }


def compiled(*routes: dict[str, Any], name: str = "chat", **extra: Any) -> GatewayRoute:
    return compile_apisix_route(gateway(*routes, **extra), name)


def refused(*routes: dict[str, Any], name: str = "chat", **extra: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        compiled(*routes, name=name, **extra)
    return caught.value.message


# --- finding the route ---------------------------------------------------------------------------


def test_the_named_route_is_compiled_and_its_siblings_ignored() -> None:
    broken = {"name": "other", "uri": 5, "upstream": "nonsense"}
    result = compiled(broken, route("chat"))
    assert result.name == "chat"
    assert result.uri == "/acme/chat"
    assert result.methods == ("POST",)
    assert result.path == "/acme/chat"  # no proxy-rewrite: the route's own uri
    assert result.nodes == (Node("http", "127.0.0.1", 9100, 1),)


def test_a_route_can_be_found_by_id_too() -> None:
    assert compiled(route("x", id="r7"), name="r7").name == "r7"


def test_an_unknown_route_names_the_known_ones() -> None:
    message = refused(route("a"), route("b"), name="c")
    assert "'c'" in message
    assert "a, b" in message


def test_two_routes_with_one_name_are_refused() -> None:
    assert "2 routes" in refused(route("chat"), route("chat"))


def test_another_gateway_type_is_refused() -> None:
    with pytest.raises(ConfigError, match="kong"):
        compile_apisix_route({"gateway_type": "kong", "routes": [route()]}, "chat")


def test_the_gateway_type_may_be_left_out() -> None:
    assert compile_apisix_route({"routes": [route()]}, "chat").name == "chat"


def test_a_disabled_route_is_refused() -> None:
    assert "disabled" in refused(route(status=0))


def test_a_route_must_allow_post() -> None:
    assert "POST" in refused(route(methods=["GET"]))


def test_methods_default_to_the_control_towers() -> None:
    raw = route()
    del raw["methods"]
    assert compiled(raw).methods == ("GET", "POST")


def test_a_route_without_uri_is_refused() -> None:
    raw = route()
    del raw["uri"]
    assert "no uri" in refused(raw)


def test_a_pattern_uri_needs_a_fixed_upstream_path() -> None:
    assert "pattern" in refused(route(uri="/v1/inference/*"))
    fixed = compiled(
        route(uri="/v1/inference/*", plugins={"proxy-rewrite": {"uri": "/v1/chat/completions"}})
    )
    assert fixed.path == "/v1/chat/completions"


def test_route_matching_conditions_are_listed_as_not_applied() -> None:
    result = compiled(
        route(host="a.example", vars=[["arg_x", "==", "1"]], remote_addrs=["10.0.0.1"])
    )
    assert set(result.ignored) == {
        "route 'chat'.host",
        "route 'chat'.vars",
        "route 'chat'.remote_addrs",
    }


# --- upstream forms ------------------------------------------------------------------------------


def test_inline_upstream_with_weights_timeouts_and_retries() -> None:
    result = compiled(
        route(
            upstream={
                "type": "roundrobin",
                "nodes": {"10.0.0.1:8080": 3, "10.0.0.2:8081": "1"},  # placeholders give strings
                "timeout": {"connect": 2, "send": "3", "read": 60},
                "retries": 2,
            }
        )
    )
    assert result.nodes == (Node("http", "10.0.0.1", 8080, 3), Node("http", "10.0.0.2", 8081, 1))
    assert result.timeouts == UpstreamTimeouts(connect_s=2, send_s=3, read_s=60)
    assert result.retries == 2
    assert result.balancer == Balancer("roundrobin")


def test_retries_default_to_the_other_nodes() -> None:
    upstream = {"nodes": {"a:1": 1, "b:2": 1, "c:3": 1}}
    assert compiled(route(upstream=upstream)).retries == 2


def test_node_keys_may_be_urls_as_the_control_tower_samples_write_them() -> None:
    upstream = {"nodes": {"https://api.groq.com": 1, "http://h:8080/": 2, "[::1]:9": 1, "plain": 1}}
    assert compiled(route(upstream=upstream)).nodes == (
        Node("https", "api.groq.com", 443, 1),
        Node("http", "h", 8080, 2),
        Node("http", "::1", 9, 1),
        Node("http", "plain", 80, 1),
    )


def test_the_upstream_scheme_applies_to_host_port_keys() -> None:
    upstream = {"scheme": "https", "nodes": {"api.example.com": 1, "http://x:1": 1}}
    nodes = compiled(route(upstream=upstream)).nodes
    assert nodes == (Node("https", "api.example.com", 443, 1), Node("http", "x", 1, 1))
    assert nodes[0].origin == "https://api.example.com:443"
    assert Node("http", "::1", 9, 1).origin == "http://[::1]:9"


def test_nodes_in_list_form() -> None:
    upstream = {
        "nodes": [{"host": "10.0.0.1", "port": 80, "weight": 5}, {"host": "b", "weight": 1}]
    }
    assert compiled(route(upstream=upstream)).nodes == (
        Node("http", "10.0.0.1", 80, 5),
        Node("http", "b", 80, 1),
    )


def test_zero_weight_nodes_get_no_traffic() -> None:
    upstream = {"nodes": {"a:1": 0, "b:2": 1}}
    assert compiled(route(upstream=upstream)).nodes == (Node("http", "b", 2, 1),)


@pytest.mark.parametrize(
    ("upstream", "expected"),
    [
        ({"nodes": {}}, "no nodes"),
        ({"nodes": {"a:1": 0}}, "weight above 0"),
        ({"nodes": {"https://h/openai/v1": 1}}, "path"),
        ({"nodes": {"a:99999": 1}}, "port"),
        ({"nodes": {"a b": 1}}, "host"),
        ({"nodes": {"ftp://h": 1}}, "http(s)"),
        ({"nodes": {"http://user:pw@h": 1}}, "user name"),
        ({"nodes": {"a:1": -1}}, "invalid"),
        ({"nodes": {"a:1": 1}, "scheme": "grpc"}, "grpc"),
        ({"nodes": {"a:1": 1}, "type": "ewma"}, "ewma"),
        ({"nodes": {"a:1": 1}, "service_name": "llm", "discovery_type": "dns"}, "discovery"),
        ({"nodes": [{"host": "a", "priority": 1}, {"host": "b", "priority": 0}]}, "priorit"),
        ({"nodes": {"a:1": 1}, "pass_host": "rewrite"}, "upstream_host"),
        ({"nodes": {"a:1": 1}, "type": "chash", "hash_on": "header"}, "key"),
        ({"nodes": {"a:1": 1}, "type": "chash", "hash_on": "consumer"}, "consumer"),
        ({"nodes": {"a:1": 1}, "type": "chash", "key": "server_name"}, "server_name"),
    ],
)
def test_unusable_upstreams_are_refused(upstream: dict[str, Any], expected: str) -> None:
    assert expected in refused(route(upstream=upstream))


def test_upstream_id_names_an_entry_of_the_modules_upstreams() -> None:
    upstreams = [
        {"name": "other", "nodes": {"x:1": 1}},
        {"name": "llm-cluster", "type": "least_conn", "nodes": {"a:1": 1, "b:1": 1}, "retries": 1},
    ]
    raw = route(upstream_id="llm-cluster")
    del raw["upstream"]
    result = compiled(raw, upstreams=upstreams)
    assert result.balancer == Balancer("least_conn")
    assert [node.host for node in result.nodes] == ["a", "b"]


def test_upstream_id_matches_an_id_before_a_name() -> None:
    upstreams = [{"name": "1", "nodes": {"by-name:1": 1}}, {"id": 1, "nodes": {"by-id:1": 1}}]
    raw = route(upstream_id=1)
    del raw["upstream"]
    assert compiled(raw, upstreams=upstreams).nodes[0].host == "by-id"


def test_an_unknown_upstream_id_names_the_known_ones() -> None:
    raw = route(upstream_id="missing")
    del raw["upstream"]
    message = refused(raw, upstreams=[{"name": "llm", "nodes": {"a:1": 1}}])
    assert "'missing'" in message
    assert "llm" in message


def test_a_route_without_any_upstream_is_refused() -> None:
    raw = route()
    del raw["upstream"]
    assert "no upstream" in refused(raw)


def test_a_service_lends_its_upstream_and_plugins() -> None:
    raw = route(service_id="svc", plugins={"request-id": {}})
    del raw["upstream"]
    service = {
        "id": "svc",
        "upstream": {"nodes": {"svc-node:1": 1}},
        "plugins": {"prometheus": {}, "request-id": {"header_name": "X-Svc"}},
    }
    result = compiled(raw, service=service)
    assert result.nodes[0].host == "svc-node"
    assert result.implemented_plugins == ("prometheus", "request-id")
    assert result.request_id is not None
    assert result.request_id.header_name == "x-request-id"  # the route's own config wins


def test_a_service_is_used_only_by_routes_bound_to_it() -> None:
    service = {"id": "svc", "plugins": {"cors": {}}}
    assert compiled(route(), service=service).unimplemented_plugins == ()
    assert "service" in refused(route(service_id="other"), service=service)


def test_route_timeout_overrides_the_upstreams_field_by_field() -> None:
    upstream = {"nodes": {"a:1": 1}, "timeout": {"connect": 5, "send": 5, "read": 5}}
    result = compiled(route(upstream=upstream, timeout={"read": 90}))
    assert result.timeouts == UpstreamTimeouts(connect_s=5, send_s=5, read_s=90)


def test_chash_keys() -> None:
    def balancer(**fields: Any) -> Balancer:
        upstream = {"type": "chash", "nodes": {"a:1": 1, "b:1": 1}, **fields}
        return compiled(route(upstream=upstream)).balancer

    assert balancer() == Balancer("chash", "vars", "remote_addr")
    assert balancer(key="http_x_user") == Balancer("chash", "header", "x-user")
    assert balancer(key="arg_user") == Balancer("chash", "arg", "user")
    assert balancer(key="cookie_session") == Balancer("chash", "cookie", "session")
    assert balancer(hash_on="header", key="X-User") == Balancer("chash", "header", "x-user")
    assert balancer(hash_on="cookie", key="sid") == Balancer("chash", "cookie", "sid")


def test_pass_host_rewrite_sets_the_host_header() -> None:
    upstream = {"nodes": {"a:1": 1}, "pass_host": "rewrite", "upstream_host": "llm.internal"}
    assert compiled(route(upstream=upstream)).host == "llm.internal"
    assert compiled(route(upstream={"nodes": {"a:1": 1}, "pass_host": "node"})).host is None


def test_health_checks_and_tls_are_listed_as_not_applied() -> None:
    upstream = {"nodes": {"a:1": 1}, "checks": {"active": {}}, "health_check": {}, "tls": {}}
    ignored = compiled(route(upstream=upstream)).ignored
    assert "route 'chat'.upstream.checks" in ignored
    assert "route 'chat'.upstream.health_check" in ignored
    assert "route 'chat'.upstream.tls" in ignored


def test_compiling_does_not_change_its_input() -> None:
    config = gateway(route(plugins={"proxy-rewrite": {"uri": "/x", "headers": {"X-A": "1"}}}))
    before = copy.deepcopy(config)
    compile_apisix_route(config, "chat")
    assert config == before


def test_the_route_is_immutable() -> None:
    result = compiled(route())
    with pytest.raises(AttributeError):
        result.path = "/other"  # type: ignore[misc]
