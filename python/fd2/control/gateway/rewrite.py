"""`proxy-rewrite`: the upstream path, Host and header actions of a route, fixed at compile time.

fd2 is the gateway, so "the client's uri" APISIX would rewrite is the route's own `uri` (what the
Control Tower's `endpoint_url` points at): `uri` replaces it, else the first `regex_uri` pair
whose pattern matches rewrites it (its groups are `$1`… in header values). Headers come in the flat
form (every entry is set; an empty value removes) or as `{add, remove, set}`, applied in that
order, as APISIX does.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from fd2.control.gateway.apisix_config import RawProxyRewrite, decode
from fd2.control.gateway.route import HeaderOp, TextPart
from fd2.control.gateway.variables import has_variables, parse_text
from fd2.control.secrets import Secret, is_secret_reference
from fd2.serving.errors import ConfigError

_ACTIONS: Final = ("add", "remove", "set")
_TOKEN: Final = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_GROUP: Final = re.compile(r"\$(?:\{(\d)\}|(\d))")
_SENSITIVE: Final = re.compile(r"auth|key|token|secret|passw|cookie|credential", re.IGNORECASE)
# Framing and connection headers belong to the HTTP client, not to a manifest.
_FORBIDDEN: Final = frozenset(
    {"content-length", "transfer-encoding", "connection", "upgrade", "te", "keep-alive"}
)


class Rewrite:
    __slots__ = ("captures", "headers", "host", "ignored", "path", "scheme")

    def __init__(self, path: str) -> None:
        self.path = path
        self.host: str | None = None
        self.scheme: str | None = None
        self.headers: tuple[HeaderOp, ...] = ()
        self.captures: tuple[str, ...] | None = None
        self.ignored: list[str] = []


def compile_rewrite(
    raw: Mapping[str, Any] | None, route_uri: str, where: str, *, path_needed: bool = True
) -> Rewrite:
    """`path_needed` is False when ai-proxy sends the request: its endpoint names the path."""
    if raw is None:
        return Rewrite(_fixed_uri(route_uri, where) if path_needed else route_uri)
    config = decode(dict(raw), RawProxyRewrite, where)
    if config.method is not None and config.method.upper() != "POST":
        raise ConfigError(f"{where}.method {config.method!r}: chat completions are POSTed")
    rewrite = Rewrite("")
    if not path_needed:
        rewrite.path = route_uri
    elif config.uri is not None:
        rewrite.path = _plain_uri(config.uri, f"{where}.uri")
        if config.regex_uri:
            rewrite.ignored.append(f"{where}.regex_uri")  # uri wins, as in APISIX
    elif config.regex_uri is not None:
        rewrite.path, rewrite.captures = _regex_uri(config.regex_uri, route_uri, where)
    else:
        rewrite.path = _fixed_uri(route_uri, where)
    if config.host is not None:
        rewrite.host = _host_value(config.host, f"{where}.host")
    if config.scheme is not None:
        rewrite.scheme = config.scheme.lower()
    if config.use_real_request_uri_unsafe:
        rewrite.ignored.append(f"{where}.use_real_request_uri_unsafe")
    if config.headers:
        rewrite.headers = header_ops(config.headers, rewrite, f"{where}.headers")
    return rewrite


def header_ops(raw: Mapping[str, Any], rewrite: Rewrite, where: str) -> tuple[HeaderOp, ...]:
    structured = set(raw) <= set(_ACTIONS) and any(
        isinstance(value, Mapping | list) for value in raw.values()
    )
    ops: list[HeaderOp] = []
    if not structured:
        ops = [_set_op(name, value, rewrite, f"{where}.{name}") for name, value in raw.items()]
        return tuple(op for op in ops if op.name != "host")
    for action in _ACTIONS:  # APISIX's order: add, then remove, then set
        entries = raw.get(action)
        if entries is None:
            continue
        if action == "remove":
            if not isinstance(entries, list) or not all(isinstance(n, str) for n in entries):
                raise ConfigError(f"{where}.remove must be a list of header names")
            ops.extend(HeaderOp("remove", _name(n, f"{where}.remove")) for n in entries)
            continue
        if not isinstance(entries, Mapping):
            raise ConfigError(f"{where}.{action} must be an object of header values")
        for name, value in entries.items():
            label = f"{where}.{action}.{name}"
            if action == "set":
                ops.append(_set_op(name, value, rewrite, label))
            elif _name(name, label) == "host":
                raise ConfigError(f"{label}: a request has one Host; set it instead")
            else:
                lower = _name(name, label)
                ops.append(HeaderOp("add", lower, _value(value, rewrite, label, lower)))
    return tuple(op for op in ops if op.name != "host")


def check_text(value: Any, where: str) -> str | Secret:
    """A configured text value: str or Secret (numbers as text), never an unresolved reference."""
    if isinstance(value, Secret):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ConfigError(f"{where} must be a string")
    text = str(value)
    if any(is_secret_reference(word) for word in text.split()):
        # The core resolves a reference only when it is a whole value; "Bearer env:KEY" would go
        # upstream as those characters.
        raise ConfigError(
            f"{where} holds a secret reference inside a longer string; "
            "it is resolved only as a whole value"
        )
    return text


def _set_op(name: str, value: Any, rewrite: Rewrite, where: str) -> HeaderOp:
    lower = _name(name, where)
    parts = _value(value, rewrite, where, lower)
    if lower == "host":
        if has_variables(parts) or any(isinstance(p, Secret) for p in parts):
            raise ConfigError(f"{where}: the Host header must be plain text")
        rewrite.host = "".join(str(p) for p in parts) or None
        return HeaderOp("remove", "host")
    if not parts:  # an empty value removes the header, as nginx never sends an empty one
        return HeaderOp("remove", lower)
    return HeaderOp("set", lower, parts)


def _value(value: Any, rewrite: Rewrite, where: str, name: str) -> tuple[TextPart, ...]:
    parts = parse_text(check_text(value, where), where, rewrite.captures)
    return guarded(name, parts)


def guarded(name: str, parts: tuple[TextPart, ...]) -> tuple[TextPart, ...]:
    """Parts of a credential-carrying header with its literal text kept as `Secret`s, so that no
    repr or log line shows it (`Bearer ` stays readable, the token does not)."""
    if not _SENSITIVE.search(name):
        return parts
    out: list[TextPart] = []
    for part in parts:
        if not isinstance(part, str) or not part:
            out.append(part)
            continue
        scheme, space, token = part.partition(" ")
        if space and not out:
            out.append(scheme + space)
            part = token
        if part:
            out.append(Secret(part, f"header {name}"))
    return tuple(out)


def _name(name: str, where: str) -> str:
    if not _TOKEN.match(name):
        raise ConfigError(f"{where}: {name!r} is not a valid header name")
    lower = name.lower()
    if lower in _FORBIDDEN:
        raise ConfigError(f"{where}: the {lower} header is managed by the gateway")
    return lower


def _host_value(value: str, where: str) -> str:
    text = value.strip()
    if not text or any(c in text for c in "/ \t\r\n$"):
        raise ConfigError(f"{where} must be a plain host name")
    return text


def _plain_uri(uri: str, where: str) -> str:
    parts = parse_text(uri, where)
    if has_variables(parts) or not uri.startswith("/"):
        raise ConfigError(f"{where} must be a fixed path starting with '/' (no variables)")
    return str(parts[0]) if parts else uri


def _fixed_uri(uri: str, where: str) -> str:
    if "*" in uri or "/:" in uri or not uri.startswith("/"):
        raise ConfigError(
            f"{where}: the route's uri {uri!r} is a pattern, not a path; fd2 cannot tell which "
            "upstream path to use: give proxy-rewrite a fixed uri"
        )
    return uri


def _regex_uri(pairs: Sequence[str], route_uri: str, where: str) -> tuple[str, tuple[str, ...]]:
    if not pairs or len(pairs) % 2:
        raise ConfigError(f"{where}.regex_uri must hold pattern/template pairs")
    uri = _fixed_uri(route_uri, where)
    for index in range(0, len(pairs), 2):
        try:
            pattern = re.compile(pairs[index])
        except re.error as exc:
            raise ConfigError(f"{where}.regex_uri[{index}] is not a valid pattern: {exc}") from None
        match = pattern.search(uri)
        if match is None:
            continue
        groups = (match.group(0), *(group or "" for group in match.groups()))
        expanded = _GROUP.sub(functools.partial(_group, groups=groups), pairs[index + 1])
        new = uri[: match.start()] + expanded + uri[match.end() :]
        return _plain_uri(new, f"{where}.regex_uri[{index + 1}]"), groups[1:]
    # No pattern matches: the uri goes upstream unchanged, and $1… are empty.
    return uri, ()


def _group(found: re.Match[str], groups: tuple[str, ...]) -> str:
    """`$n` of a regex_uri template: group n of the match (0: all of it), empty if absent."""
    number = int(found.group(1) or found.group(2))
    return groups[number] if number < len(groups) else ""
