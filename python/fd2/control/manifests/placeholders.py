"""`${...}` placeholders in manifest strings (map keys included), resolved for one environment.

Forms: `${environments.${environment}.a.b}`, `${environments.<name>.a.b}`, `${environment}` and
`${NAME}` (an upper-case process environment variable). Placeholders nest, and a value reached
through one may hold placeholders of its own (resolved in turn, to a bounded depth). A string that
is one whole placeholder keeps the type of the value it reaches (a map stays a map).

`${NAME}` reads only variables on an allow-list: names starting with `FD2_MANIFEST_`, plus what
`--manifest-env-allow` adds. A manifest is data from the Control Tower or a directory, not the
operator's shell: without the list, any manifest could copy any secret of the process (another
project's key) into a field that reaches a client. Values read this way are masked in logs.
`env:NAME` secret references are a separate, explicit mechanism and are not limited by it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from functools import cache, lru_cache
from typing import Any, Final

import msgspec

from fd2.config import Settings, env_name
from fd2.control.environments import canonical_environment
from fd2.control.secrets import Secret
from fd2.serving.errors import ConfigError
from fd2.telemetry.logs import register_environment_value

_UPPER_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_MAX_DEPTH = 8
_COMMON = "common"


MANIFEST_ENV_PREFIX = "FD2_MANIFEST_"
"""Variables under this prefix are readable by `${NAME}` placeholders without any opt-in."""


class PlaceholderError(ConfigError):
    """A placeholder that cannot be resolved; the message names it and where it stands."""


class EnvironmentAllowList:
    """Which process environment variables `${NAME}` placeholders may read.

    `FD2_MANIFEST_*` always (except fd2's own settings variables under that prefix, such as
    `FD2_MANIFEST_TTL`); plus each entry given: a name, or a prefix ending in `*`."""

    __slots__ = ("_names", "_prefixes")

    def __init__(self, entries: Iterable[str] = ()) -> None:
        names: set[str] = set()
        prefixes: list[str] = [MANIFEST_ENV_PREFIX]
        for entry in entries:
            entry = entry.strip()
            if entry.endswith("*") and entry[:-1]:
                prefixes.append(entry[:-1])
            elif entry:
                names.add(entry)
        self._names = frozenset(names)
        self._prefixes = tuple(prefixes)

    def allows(self, name: str) -> bool:
        if name in self._names:
            return True
        if name.startswith(MANIFEST_ENV_PREFIX) and name in _settings_variables():
            return False
        return name.startswith(self._prefixes)


_allow_list = EnvironmentAllowList()


def allow_environment_variables(entries: Iterable[str]) -> None:
    """Sets this process's allow-list (from `--manifest-env-allow`), once at start-up."""
    global _allow_list
    _allow_list = EnvironmentAllowList(entries)


@cache
def _settings_variables() -> frozenset[str]:
    return frozenset(env_name(field.name) for field in msgspec.structs.fields(Settings))


class PlaceholderContext:
    """What placeholders resolve against: the manifest's environments, the environment served."""

    def __init__(
        self,
        *,
        environments: Mapping[str, Any],
        environment: str,
        environ: Mapping[str, str],
        on_reached_string: Callable[[str], Any] | None = None,
        env_allow: EnvironmentAllowList | None = None,
        memo: dict[tuple[Any, ...], Any] | None = None,
    ) -> None:
        self.memo = memo
        """Strings already resolved against the same environments, environment and secrets
        (shared by the contexts of one project's modules in one environment, for one build):
        the modules of a manifest repeat the same templates (`${environments.${environment}
        .urls.x}`, a common key), resolved once instead of once per module. Only immutable
        results are kept (text, numbers, a `Secret`), never a map or list, and never a failure."""
        self.environments = environments
        self.environ = environ
        self.env_allow = env_allow or _allow_list
        self._by_canonical: Mapping[str, str] = _by_canonical(tuple(environments))
        # Spell the served environment as the manifest does, where it names it.
        self.environment = self._by_canonical.get(canonical_environment(environment), environment)
        self.on_reached_string = on_reached_string

    def environment_entry(self, name: str) -> Any:
        key = (
            name
            if name in self.environments
            else self._by_canonical.get(canonical_environment(name))
        )
        if key is None:
            return _MISSING
        return self.environments[key]


_MISSING: Any = object()
_RESOLVED_TYPES: Final = (str, dict, list)
"""What `_resolve` looks inside (a tuple: `isinstance` with a union type is slower)."""


@lru_cache(maxsize=1024)
def _by_canonical(names: tuple[str, ...]) -> Mapping[str, str]:
    """A manifest's environment names by canonical spelling, once per distinct set of names
    (every module of every project in a build asks, and manifests repeat the same few); read
    only, so one result is shared safely."""
    return {canonical_environment(name): name for name in names}


def resolve_value(value: Any, ctx: PlaceholderContext, path: str = "$") -> Any:
    """Resolve placeholders everywhere inside `value` (dicts, lists, strings, keys)."""
    return _resolve(value, ctx, path, 0)


def _resolve(value: Any, ctx: PlaceholderContext, path: str, depth: int) -> Any:
    if isinstance(value, str):
        return _resolve_string(value, ctx, path, depth) if "${" in value else value
    if isinstance(value, dict):
        resolved: dict[str, Any] = {}
        for key, item in value.items():
            new_key = (
                _resolve_string(key, ctx, f"{path}.<key {key}>", depth) if "${" in key else key
            )
            if not isinstance(new_key, str):
                raise PlaceholderError(f"placeholder in map key at {path} must resolve to a string")
            if type(item) is str:  # the common case first: one type check
                if "${" not in item:
                    resolved[new_key] = item
                    continue
                memo = ctx.memo
                if memo is None:
                    resolved[new_key] = _resolve_string(item, ctx, f"{path}.{new_key}", depth)
                    continue
                # Memoised under the parts of its path too: a hit spells no path out (every
                # module of a project repeats the same templates under the same keys).
                found = memo.get((item, path, new_key, depth), _MISSING)
                if found is _MISSING:
                    found = _resolve_string(item, ctx, f"{path}.{new_key}", depth)
                    if found is None or isinstance(found, str | Secret | int | float):
                        memo[(item, path, new_key, depth)] = found
                resolved[new_key] = found
            elif isinstance(item, _RESOLVED_TYPES):
                resolved[new_key] = _resolve(item, ctx, f"{path}.{new_key}", depth)
            else:
                resolved[new_key] = item  # as written: no path to spell out for it
        return resolved
    if isinstance(value, list):
        return [_resolve(item, ctx, f"{path}[{i}]", depth) for i, item in enumerate(value)]
    return value


def _resolve_string(text: str, ctx: PlaceholderContext, path: str, depth: int) -> Any:
    memo = ctx.memo
    if memo is None:
        return _resolve_text(text, ctx, path, depth)
    key = (text, path, depth)
    found = memo.get(key, _MISSING)
    if found is not _MISSING:
        return found
    value = _resolve_text(text, ctx, path, depth)
    if value is None or isinstance(value, str | Secret | int | float):
        memo[key] = value
    return value


def _resolve_text(text: str, ctx: PlaceholderContext, path: str, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        raise PlaceholderError(f"placeholders nest too deeply (a cycle?) at {path}")
    pieces: list[Any] = []
    texts_only = True
    for part in _parsed(text):
        if isinstance(part, str):
            pieces.append(part)
        elif isinstance(part, _Placeholder):
            nested = part.nested
            if nested is None:
                expression = part.inner
            elif part.around_environment is not None and depth < _MAX_DEPTH:
                # `environments.${environment}.x`: what resolving the inner text gives, without
                # resolving it (its one placeholder is the served environment's name).
                before, after = part.around_environment
                expression = before + ctx.environment + after
            else:
                expression = _resolve_string(nested, ctx, path, depth + 1)
            piece = _evaluate(str(expression), ctx, path, depth)
            texts_only = texts_only and type(piece) is str
            pieces.append(piece)
        else:
            raise PlaceholderError(f"unterminated placeholder {part.rest!r} at {path}")
    if texts_only:  # the common case: what follows gives the same join
        return "".join(pieces)
    non_empty = [piece for piece in pieces if not (isinstance(piece, str) and piece == "")]
    if len(non_empty) == 1 and not isinstance(non_empty[0], str):
        return non_empty[0]
    if any(isinstance(piece, Secret) for piece in pieces):
        # `"Bearer ${...api_key}"`: the whole string carries the secret, so it is one too.
        joined = "".join(
            piece.reveal() if isinstance(piece, Secret) else _as_text(piece, path)
            for piece in pieces
        )
        return Secret(joined, f"{path} (a string around a secret)")
    return "".join(_as_text(piece, path) for piece in pieces)


class _Placeholder:
    """One `${...}` of a string: its inner text, which itself holds placeholders when `nested`
    is set (then the inner text is resolved first, and the result is the expression)."""

    __slots__ = ("around_environment", "inner", "nested")

    def __init__(self, inner: str) -> None:
        self.inner = inner
        self.nested = inner if "${" in inner else None
        self.around_environment = _around_environment(inner) if self.nested else None
        """(before, after) when the inner text is `before${environment}after` (literal text
        around one `${environment}`): it resolves to before + the environment + after."""


def _around_environment(inner: str) -> tuple[str, str] | None:
    parts = _parsed(inner)
    if len(parts) != 3:
        return None
    before, placeholder, after = parts
    if (
        isinstance(before, str)
        and isinstance(after, str)
        and isinstance(placeholder, _Placeholder)
        and placeholder.nested is None
        and placeholder.inner.strip() == "environment"
    ):
        return before, after
    return None


class _Unterminated:
    """A `${` without its `}`: an error where the scan reaches it (earlier ones come first)."""

    __slots__ = ("rest",)

    def __init__(self, rest: str) -> None:
        self.rest = rest


@lru_cache(maxsize=16_384)
def _parsed(text: str) -> tuple[str | _Placeholder | _Unterminated, ...]:
    """A string split into literal text and placeholders, once per distinct string: a full build
    resolves the same few templates for every (module, environment) of every project."""
    parts: list[str | _Placeholder | _Unterminated] = []
    position = 0
    while True:
        start = text.find("${", position)
        if start < 0:
            parts.append(text[position:])
            break
        parts.append(text[position:start])
        end = _matching_brace(text, start)
        if end < 0:
            parts.append(_Unterminated(text[start:]))
            break
        parts.append(_Placeholder(text[start + 2 : end]))
        position = end + 1
    return tuple(parts)


_BRACES: Final = re.compile(r"\$\{|\}")


def _matching_brace(text: str, start: int) -> int:
    """The index of the `}` closing the `${` at `start`, nested ones skipped; -1 if none."""
    depth = 0
    for match in _BRACES.finditer(text, start):
        if match.group() == "${":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return match.start()
    return -1


@lru_cache(maxsize=16_384)
def _expression(expression: str) -> tuple[str, tuple[str, ...] | None]:
    """An expression stripped, and the names after `environments.` when it reads one; once per
    distinct expression (every project and environment of a build asks for the same few)."""
    expression = expression.strip()
    if expression.startswith("environments."):
        return expression, tuple(expression.split(".")[1:])
    return expression, None


def _evaluate(expression: str, ctx: PlaceholderContext, path: str, depth: int) -> Any:
    expression, parts = _expression(expression)
    if expression == "environment":
        return ctx.environment
    if parts is not None:
        if not parts or not parts[0]:
            raise PlaceholderError(f"placeholder ${{{expression}}} at {path} names no environment")
        node = _lookup(ctx.environment_entry(parts[0]), parts[1:])
        if node is _MISSING and parts[0] != _COMMON:
            # `common` holds what every environment shares: an entry falls back to it.
            node = _lookup(ctx.environment_entry(_COMMON), parts[1:])
        if node is _MISSING:
            raise PlaceholderError(
                f"placeholder ${{{expression}}} at {path}: {expression} does not exist"
            )
        return _reached(node, ctx, path, depth)
    if _UPPER_NAME.match(expression):
        if not ctx.env_allow.allows(expression):
            raise PlaceholderError(
                f"placeholder ${{{expression}}} at {path}: manifests may read only environment "
                f"variables named {MANIFEST_ENV_PREFIX}* or listed in --manifest-env-allow"
            )
        value = ctx.environ.get(expression)
        if value is None:
            raise PlaceholderError(
                f"placeholder ${{{expression}}} at {path}: environment variable is not set"
            )
        register_environment_value(value)
        return value
    raise PlaceholderError(f"unknown placeholder ${{{expression}}} at {path}")


def _lookup(node: Any, parts: tuple[str, ...]) -> Any:
    for part in parts:
        if node is _MISSING:
            break
        node = _step(node, part)
    return node


def _step(node: Any, part: str) -> Any:
    if isinstance(node, dict):
        return node.get(part, _MISSING)
    if isinstance(node, list) and part.isdigit() and int(part) < len(node):
        return node[int(part)]
    return _MISSING


def _reached(node: Any, ctx: PlaceholderContext, path: str, depth: int) -> Any:
    # (text without placeholders, the common case, is what resolving it gives)
    value = node if type(node) is str and "${" not in node else _resolve(node, ctx, path, depth + 1)
    if isinstance(value, str) and ctx.on_reached_string is not None:
        return ctx.on_reached_string(value)
    return value


def _as_text(piece: Any, path: str) -> str:
    if isinstance(piece, str):
        return piece
    if isinstance(piece, bool | int | float):
        return str(piece).lower() if isinstance(piece, bool) else str(piece)
    raise PlaceholderError(
        f"placeholder at {path} reaches a {type(piece).__name__} inside a longer string"
    )
