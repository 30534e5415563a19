"""`compile_apisix_route`: one route of an APISIX `api_gateway` module, compiled for fd2.

fd2 is the gateway: it does not call APISIX, it applies the route itself. This is pure (no I/O)
and runs when the route table is compiled; the config is already resolved by the core
(placeholders substituted, whole-value secret references turned into `Secret`s).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fd2.control.gateway.access_plugins import (
    compile_jwt_auth,
    compile_limit_count,
    compile_limit_req,
    compile_request_id,
)
from fd2.control.gateway.ai_plugins import compile_ai_proxy, compile_templates
from fd2.control.gateway.apisix_config import RawGateway, RawRoute, RawTimeout, decode
from fd2.control.gateway.plugins import IMPLEMENTED, merged, plugin_map
from fd2.control.gateway.rewrite import compile_rewrite
from fd2.control.gateway.route import Balancer, GatewayRoute, LimitRule, Node, UpstreamTimeouts
from fd2.control.gateway.upstreams import compile_upstream, find_upstream, timeouts_of
from fd2.serving.errors import ConfigError

_IGNORED_ROUTE_FIELDS = ("host", "hosts", "vars", "remote_addrs", "filter_func", "plugin_config_id")


def compile_apisix_route(gateway_config: Mapping[str, Any], route_name: str) -> GatewayRoute:
    """The route named `route_name` of an apisix `api_gateway` config; ConfigError naming what
    is wrong when it cannot be served."""
    gateway = decode(dict(gateway_config), RawGateway, "the api_gateway config")
    if gateway.gateway_type not in (None, "apisix"):
        raise ConfigError(
            f"the gateway module's gateway_type is {gateway.gateway_type!r}, not 'apisix'"
        )
    where = f"route {route_name!r}"
    route = decode(_find_route(gateway.routes, route_name), RawRoute, where)
    if route.status == 0:
        raise ConfigError(f"{where} is disabled (status 0)")
    route_uri = route.uri or (route.uris[0] if route.uris else None)
    if not route_uri:
        raise ConfigError(f"{where} has no uri")
    methods = tuple(method.upper() for method in route.methods or ("GET", "POST"))
    if "POST" not in methods:
        raise ConfigError(f"{where} does not allow POST, which chat completions use")
    ignored = [f"{where}.{field}" for field in _IGNORED_ROUTE_FIELDS if getattr(route, field)]
    if route.uris and len(route.uris) > 1 and not route.uri:
        ignored.append(f"{where}.uris[1:]")

    service = _service(gateway.service, route, where)
    plugins = merged(
        plugin_map(gateway.global_plugins, "global_plugins"),
        plugin_map(service.get("plugins"), "service.plugins"),
        plugin_map(route.plugins, f"{where}.plugins"),
    )
    ai = plugins.get("ai-proxy")
    rewrite = compile_rewrite(
        plugins.get("proxy-rewrite"),
        route_uri,
        f"{where}.proxy-rewrite",
        path_needed=ai is None,
    )
    ignored += rewrite.ignored
    if ai is not None:
        proxy = compile_ai_proxy(ai, f"{where}.ai-proxy")
        ignored += proxy.ignored
        # ai-proxy makes the request itself: to its endpoint, with its path and auth.
        ignored += _overridden(route, service, plugins, where)
        nodes: tuple[Node, ...] = (proxy.node,)
        balancer, retries = Balancer("roundrobin"), 0
        path, query, host, timeouts = proxy.path, proxy.query, None, proxy.timeouts
        headers = rewrite.headers + proxy.headers
        provider, model, body_options = proxy.provider, proxy.model, proxy.body_options
    else:
        upstream = compile_upstream(
            _upstream_of(route, service, gateway.upstreams, where),
            f"{where}.upstream",
            scheme_override=rewrite.scheme,
        )
        ignored += upstream.ignored
        nodes, balancer, retries = upstream.nodes, upstream.balancer, upstream.retries
        path, query, host = rewrite.path, (), rewrite.host or upstream.host
        timeouts = _override(upstream.timeouts, route.timeout)
        headers = rewrite.headers
        provider, model, body_options = None, None, ()

    templates = plugins.get("ai-prompt-template")
    request_id = plugins.get("request-id")
    jwt = plugins.get("jwt-auth")
    return GatewayRoute(
        name=route_name,
        uri=route_uri,
        methods=methods,
        nodes=nodes,
        balancer=balancer,
        path=path,
        query=query,
        host=host,
        headers=headers,
        timeouts=timeouts,
        retries=retries,
        provider=provider,
        model=model,
        body_options=body_options,
        templates=compile_templates(templates, f"{where}.ai-prompt-template")
        if templates is not None
        else (),
        request_id=compile_request_id(request_id, f"{where}.request-id")
        if request_id is not None
        else None,
        jwt_auth=compile_jwt_auth(jwt, gateway.consumer, f"{where}.jwt-auth")
        if jwt is not None
        else None,
        limits=_limits(plugins, where),
        implemented_plugins=tuple(sorted(name for name in plugins if name in IMPLEMENTED)),
        unimplemented_plugins=tuple(sorted(name for name in plugins if name not in IMPLEMENTED)),
        ignored=tuple(ignored),
    )


def _find_route(routes: list[dict[str, Any]], name: str) -> dict[str, Any]:
    for key in ("name", "id"):
        found = [r for r in routes if isinstance(r, dict) and str(r.get(key)) == name]
        if len(found) > 1:
            raise ConfigError(f"the gateway module has {len(found)} routes with the {key} {name!r}")
        if found:
            return found[0]
    known = sorted(str(r.get("name")) for r in routes if isinstance(r, dict) and r.get("name"))
    raise ConfigError(
        f"the gateway module has no route {name!r} (routes: {', '.join(known) or 'none'})"
    )


def _service(service: dict[str, Any] | None, route: RawRoute, where: str) -> dict[str, Any]:
    """The module's `service` when the route binds to it (`service_id`), else nothing."""
    if route.service_id is None:
        return {}
    if service is None or str(service.get("id")) != str(route.service_id):
        raise ConfigError(
            f"{where} binds to service {route.service_id!r}, which the gateway module lacks"
        )
    return service


def _upstream_of(
    route: RawRoute, service: dict[str, Any], upstreams: list[dict[str, Any]], where: str
) -> Any:
    # The route's own upstream first, then its service's, as APISIX binds them.
    if route.upstream is not None:
        return route.upstream
    if route.upstream_id is not None:
        return find_upstream(upstreams, route.upstream_id, f"{where}.upstream_id")
    if isinstance(service.get("upstream"), dict):
        return service["upstream"]
    if service.get("upstream_id") is not None:
        return find_upstream(upstreams, service["upstream_id"], "service.upstream_id")
    raise ConfigError(f"{where} has no upstream (neither upstream, upstream_id nor ai-proxy)")


def _overridden(
    route: RawRoute, service: dict[str, Any], plugins: dict[str, Any], where: str
) -> list[str]:
    ignored = []
    if route.upstream is not None or route.upstream_id is not None or "upstream" in service:
        ignored.append(f"{where}.upstream (ai-proxy sends the request)")
    rewrite = plugins.get("proxy-rewrite") or {}
    ignored += [
        f"{where}.proxy-rewrite.{field} (ai-proxy sends the request)"
        for field in ("uri", "regex_uri", "host", "scheme")
        if rewrite.get(field) is not None
    ]
    return ignored


def _override(base: UpstreamTimeouts, route: RawTimeout | None) -> UpstreamTimeouts:
    """The route's own `timeout`, field by field, over its upstream's."""
    own = timeouts_of(route)
    return UpstreamTimeouts(
        connect_s=own.connect_s if own.connect_s is not None else base.connect_s,
        send_s=own.send_s if own.send_s is not None else base.send_s,
        read_s=own.read_s if own.read_s is not None else base.read_s,
    )


def _limits(plugins: dict[str, Any], where: str) -> tuple[LimitRule, ...]:
    rules = []
    if "limit-count" in plugins:
        rules.append(compile_limit_count(plugins["limit-count"], f"{where}.limit-count"))
    if "limit-req" in plugins:
        rules.append(compile_limit_req(plugins["limit-req"], f"{where}.limit-req"))
    return tuple(rules)
