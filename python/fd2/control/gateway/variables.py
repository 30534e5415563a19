"""nginx-style variables (`$http_x_trace`, `${arg_user}`, `$1`) in proxy-rewrite values.

Parsed when a route is compiled; a variable fd2 cannot supply is a ConfigError naming it, so a
route never sends a header APISIX would have filled and fd2 would leave wrong. Per request, only
the values of headers that hold variables are put together.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final
from urllib.parse import parse_qsl

from fd2.control.gateway.route import TextPart, Variable
from fd2.control.secrets import Secret
from fd2.serving.errors import ConfigError
from fd2.serving.request import Request

# `\$` is a literal dollar, as in APISIX's variable resolver.
_VARIABLE: Final = re.compile(r"(?<!\\)\$(?:\{(\w+)\}|(\w+))")
_SIMPLE: Final = frozenset({"remote_addr", "request_id", "request_method"})
# Headers that carry the caller's credential for fd2 itself: copying them upstream would hand the
# gateway's credential to a third party.
_CREDENTIAL_HEADERS: Final = frozenset(
    {"authorization", "proxy-authorization", "api-key", "x-api-key"}
)


def parse_text(
    value: str | Secret, where: str, captures: Sequence[str] | None = None
) -> tuple[TextPart, ...]:
    """The parts of a configured value. `captures` are the groups of regex_uri's match for
    `$1`…`$9` (None: the route has no regex_uri, so they mean nothing)."""
    if isinstance(value, Secret):
        return (value,)  # a secret is a literal value, never a template
    parts: list[TextPart] = []
    unsupported: list[str] = []
    position = 0
    for match in _VARIABLE.finditer(value):
        _literal(value[position : match.start()], parts)
        position = match.end()
        name = match.group(1) or match.group(2)
        part = _variable(name, captures, unsupported, where)
        if isinstance(part, str):
            _literal(part, parts, unescape=False)
        elif part is not None:
            parts.append(part)
    _literal(value[position:], parts)
    if unsupported:
        raise ConfigError(
            f"{where} uses variable(s) fd2 cannot supply: "
            + ", ".join(f"${name}" for name in unsupported)
            + " (supported: $http_<header>, $arg_<name>, $remote_addr, $request_id, "
            "$request_method and regex_uri's $1-$9)"
        )
    return tuple(parts)


def has_variables(parts: Sequence[TextPart]) -> bool:
    return any(isinstance(part, Variable) for part in parts)


def static_text(parts: Sequence[TextPart]) -> str:
    """The value of parts without variables (secrets revealed: for the upstream request only)."""
    return "".join(part.reveal() if isinstance(part, Secret) else str(part) for part in parts)


def render(parts: Sequence[TextPart], request: Request) -> str:
    """A value with variables, for one request (an absent header or argument is empty)."""
    out: list[str] = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
        elif isinstance(part, Secret):
            out.append(part.reveal())
        else:
            out.append(variable_value(part, request))
    return "".join(out)


def variable_value(variable: Variable, request: Request) -> str:
    kind = variable.kind
    if kind == "http":
        raw = request.header(variable.name.encode("latin-1"))
        return raw.decode("latin-1") if raw is not None else ""
    if kind == "arg":
        query: bytes = request.scope.get("query_string", b"")
        for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if key == variable.name:
                return value
        return ""
    if kind == "remote_addr":
        client = request.scope.get("client")
        return str(client[0]) if client else ""
    if kind == "request_id":
        return request.request_id
    return str(request.method)  # request_method


def _variable(
    name: str, captures: Sequence[str] | None, unsupported: list[str], where: str
) -> TextPart | None:
    if name.isdigit():
        index = int(name)
        if captures is None or not 1 <= index <= 9:
            unsupported.append(name)
            return None
        # A group that did not take part in the match (or no match) is empty, as in nginx.
        return captures[index - 1] if index <= len(captures) else ""
    if name.startswith("http_") and len(name) > 5:
        header = name[5:].lower().replace("_", "-")
        if header in _CREDENTIAL_HEADERS:
            raise ConfigError(
                f"{where} copies the caller's {header} header upstream (${name}): "
                "that header holds the caller's credential for this gateway"
            )
        return Variable("http", header)
    if name.startswith("arg_") and len(name) > 4:
        return Variable("arg", name[4:])
    if name in _SIMPLE:
        return Variable(name)
    unsupported.append(name)
    return None


def _literal(text: str, parts: list[TextPart], *, unescape: bool = True) -> None:
    if unescape:
        text = text.replace("\\$", "$")
    if not text:
        return
    if parts and isinstance(parts[-1], str):
        parts[-1] = parts[-1] + text
    else:
        parts.append(text)
