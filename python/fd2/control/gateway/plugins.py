"""A route's plugins: both Control Tower forms merged, disabled ones dropped, one config each.

List form `[{"name", "enabled", "config"}]` (APISIXPlugin) and dict form `{name: config}` (APISIX's
own) are both accepted. A plugin is off when `enabled` is false or its `_meta.disable` is true.
APISIX runs a global rule's plugin in addition to the route's; fd2 applies one config per plugin,
the most specific: the route's over its service's over the module's `global_plugins`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from fd2.control.gateway.apisix_config import RawPlugin, decode
from fd2.serving.errors import ConfigError

IMPLEMENTED: Final = frozenset(
    {
        "ai-prompt-template",
        "ai-proxy",
        "jwt-auth",
        "limit-count",
        "limit-req",
        "prometheus",
        "proxy-rewrite",
        "request-id",
    }
)


def plugin_map(raw: Any, where: str) -> dict[str, dict[str, Any]]:
    """Enabled plugins by name, each config without its `_meta`."""
    if raw is None:
        return {}
    plugins: dict[str, dict[str, Any]] = {}
    if isinstance(raw, list):
        for index, item in enumerate(raw):
            plugin = decode(item, RawPlugin, f"{where}[{index}]")
            if plugin.name in plugins:
                raise ConfigError(f"{where} lists plugin {plugin.name!r} twice")
            if plugin.enabled:
                _add(plugins, plugin.name, plugin.config or {}, f"{where}[{index}].config")
        return plugins
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be a list of plugins or an object of plugin configs")
    for name, config in raw.items():
        if config is None:
            config = {}
        if not isinstance(config, Mapping):
            raise ConfigError(f"{where}.{name} must be an object")
        _add(plugins, name, config, f"{where}.{name}")
    return plugins


def merged(*layers: Mapping[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Later layers win, plugin by plugin."""
    result: dict[str, dict[str, Any]] = {}
    for layer in layers:
        result.update(layer)
    return result


def _add(
    plugins: dict[str, dict[str, Any]], name: str, config: Mapping[str, Any], where: str
) -> None:
    meta = config.get("_meta")
    body = {key: value for key, value in config.items() if key != "_meta"}
    if isinstance(meta, Mapping):
        if meta.get("disable") is True:
            return
        if meta.get("filter") and name in IMPLEMENTED:
            # Applying the plugin to every request would not be what the manifest says.
            raise ConfigError(
                f"{where}._meta.filter limits plugin {name!r} to some requests, "
                "which fd2 does not evaluate"
            )
    plugins[name] = body
