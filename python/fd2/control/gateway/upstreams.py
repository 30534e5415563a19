"""An APISIX upstream (inline on the route, or named in the module's `upstreams`) as fd2 nodes.

Node keys are `host:port` as APISIX writes them, or full URLs (`https://api.groq.com`) as the
Control Tower's samples do; a URL's scheme wins over the upstream's `scheme`, which defaults to
http. A missing port is the scheme's own (80, 443).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final
from urllib.parse import urlsplit

from fd2.control.gateway.apisix_config import RawNode, RawTimeout, RawUpstream, decode
from fd2.control.gateway.route import Balancer, Node, UpstreamTimeouts
from fd2.serving.errors import ConfigError

_SCHEMES: Final = ("http", "https")
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_BALANCERS: Final = ("roundrobin", "chash", "least_conn")
_HASH_VARS: Final = frozenset({"remote_addr"})


class CompiledUpstream:
    __slots__ = ("balancer", "host", "ignored", "nodes", "retries", "timeouts")

    def __init__(
        self,
        nodes: tuple[Node, ...],
        balancer: Balancer,
        timeouts: UpstreamTimeouts,
        retries: int,
        host: str | None,
        ignored: list[str],
    ) -> None:
        self.nodes = nodes
        self.balancer = balancer
        self.timeouts = timeouts
        self.retries = retries
        self.host = host
        self.ignored = ignored


def find_upstream(upstreams: Sequence[dict[str, Any]], ref: str | int, where: str) -> Any:
    """The entry of the module's `upstreams` whose `id` (else `name`) is `ref`."""
    wanted = str(ref)
    for key in ("id", "name"):
        found = [up for up in upstreams if isinstance(up, dict) and str(up.get(key)) == wanted]
        if len(found) > 1:
            raise ConfigError(f"{where}: {len(found)} upstreams have the {key} {wanted!r}")
        if found:
            return found[0]
    known = sorted(str(up.get("name") or up.get("id")) for up in upstreams if isinstance(up, dict))
    raise ConfigError(
        f"{where} names upstream {wanted!r}, which the gateway module does not declare "
        f"(upstreams: {', '.join(known) or 'none'})"
    )


def compile_upstream(
    raw: Any, where: str, *, scheme_override: str | None = None
) -> CompiledUpstream:
    upstream = decode(raw, RawUpstream, where)
    if upstream.discovery_type or upstream.service_name:
        raise ConfigError(f"{where} uses service discovery, which fd2 does not do: list its nodes")
    default_scheme = (scheme_override or upstream.scheme or "http").lower()
    if default_scheme not in _SCHEMES:
        raise ConfigError(f"{where}.scheme {default_scheme!r} is not served (http or https)")
    nodes = _nodes(upstream, default_scheme, where)
    retries = upstream.retries if upstream.retries is not None else len(nodes) - 1
    ignored = [
        f"{where}.{field}"
        for field in ("checks", "health_check", "tls", "keepalive_pool", "retry_timeout")
        if getattr(upstream, field) is not None
    ]
    return CompiledUpstream(
        nodes,
        _balancer(upstream, where),
        timeouts_of(upstream.timeout),
        retries,
        _host(upstream, where),
        ignored,
    )


def timeouts_of(raw: RawTimeout | None) -> UpstreamTimeouts:
    if raw is None:
        return UpstreamTimeouts()
    return UpstreamTimeouts(connect_s=raw.connect, send_s=raw.send, read_s=raw.read)


def node_from_url(url: str, where: str) -> tuple[Node, str, str]:
    """A node from an absolute URL, with the URL's path and query (for ai-proxy endpoints)."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES or not parts.hostname:
        raise ConfigError(f"{where} must be an absolute http(s) URL")
    if parts.username or parts.password:
        raise ConfigError(f"{where} must not carry a user name or password")
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError:
        raise ConfigError(f"{where} has an invalid port") from None
    return Node(scheme, parts.hostname, port, 1), parts.path, parts.query


def _nodes(upstream: RawUpstream, default_scheme: str, where: str) -> tuple[Node, ...]:
    if not upstream.nodes:
        raise ConfigError(f"{where} has no nodes")
    nodes: list[Node] = []
    if isinstance(upstream.nodes, dict):
        for key, weight in upstream.nodes.items():
            nodes.append(_node_from_key(key, weight, default_scheme, f"{where}.nodes"))
    else:
        if len({node.priority for node in upstream.nodes}) > 1:
            raise ConfigError(f"{where}.nodes have different priorities, which fd2 does not apply")
        nodes.extend(_node_from_entry(node, default_scheme, where) for node in upstream.nodes)
    if not any(node.weight > 0 for node in nodes):
        raise ConfigError(f"{where}: no node has a weight above 0")
    return tuple(node for node in nodes if node.weight > 0)


def _node_from_key(key: str, weight: int, default_scheme: str, where: str) -> Node:
    text = key.strip()
    if "://" in text:
        node, path, query = node_from_url(text, f"{where} key {text!r}")
        if path not in ("", "/") or query:
            raise ConfigError(
                f"{where} key {text!r} has a path or query; a node is a host (and port) only: "
                "put the path in proxy-rewrite's uri"
            )
        return Node(node.scheme, node.host, node.port, weight)
    host, port = _split_host_port(text, f"{where} key {text!r}")
    return Node(default_scheme, host, port or _DEFAULT_PORTS[default_scheme], weight)


def _node_from_entry(entry: RawNode, default_scheme: str, where: str) -> Node:
    host, port = _split_host_port(entry.host.strip(), f"{where}.nodes host {entry.host!r}")
    chosen = entry.port or port or _DEFAULT_PORTS[default_scheme]
    return Node(default_scheme, host, chosen, entry.weight)


def _split_host_port(text: str, where: str) -> tuple[str, int | None]:
    # Parsed as the authority of a URL, so IPv6 literals in brackets work.
    if not text or any(c in text for c in "/?#@ "):
        raise ConfigError(f"{where} is not a host or host:port")
    parts = urlsplit(f"//{text}")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"{where} has an invalid port") from None
    if not parts.hostname:
        raise ConfigError(f"{where} is not a host or host:port")
    return parts.hostname, port


def _balancer(upstream: RawUpstream, where: str) -> Balancer:
    kind = upstream.type
    if kind not in _BALANCERS:
        raise ConfigError(f"{where}.type {kind!r} is not served (roundrobin, chash or least_conn)")
    if kind != "chash":
        return Balancer(kind)
    hash_on, key = upstream.hash_on, upstream.key
    if hash_on in ("header", "cookie"):
        if not key:
            raise ConfigError(f"{where}: chash on a {hash_on} needs a key")
        return Balancer(kind, hash_on, key.lower() if hash_on == "header" else key)
    if hash_on != "vars":
        raise ConfigError(f"{where}.hash_on {hash_on!r} is not served (vars, header or cookie)")
    key = key or "remote_addr"
    for prefix, target in (("http_", "header"), ("cookie_", "cookie"), ("arg_", "arg")):
        if key.startswith(prefix) and len(key) > len(prefix):
            name = key[len(prefix) :]
            return Balancer(
                kind, target, name.lower().replace("_", "-") if target == "header" else name
            )
    if key in _HASH_VARS:
        return Balancer(kind, "vars", key)
    raise ConfigError(
        f"{where}.key {key!r} is not a variable fd2 can hash on "
        "(remote_addr, http_<header>, cookie_<name>, arg_<name>)"
    )


def _host(upstream: RawUpstream, where: str) -> str | None:
    if upstream.pass_host == "rewrite":  # noqa: S105  # a mode's name, not a password
        if not upstream.upstream_host:
            raise ConfigError(f"{where}: pass_host 'rewrite' needs upstream_host")
        return upstream.upstream_host
    if upstream.pass_host not in ("pass", "node"):
        raise ConfigError(f"{where}.pass_host {upstream.pass_host!r} is not pass, node or rewrite")
    # `pass` would forward the Host the client sent to fd2, which names fd2, not the upstream:
    # fd2 sends the node's host instead (as `node` does).
    return None
