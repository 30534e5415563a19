"""`ai-proxy` and `ai-prompt-template`, compiled.

ai-proxy sends the request itself, to `override.endpoint` or its provider's own endpoint, with
`auth.header` / `auth.query` and `options` (`options.model` and the other options overwrite the
request's fields, as APISIX's OpenAI driver does). Providers whose API is not OpenAI's chat
completions (anthropic, vertex-ai, bedrock) need a protocol conversion fd2 does not do, and are
refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import parse_qsl

from fd2.control.gateway.apisix_config import RawAiProxy, RawPromptTemplates, decode
from fd2.control.gateway.rewrite import check_text
from fd2.control.gateway.route import HeaderOp, Node, PromptTemplate, UpstreamTimeouts
from fd2.control.gateway.upstreams import node_from_url
from fd2.control.secrets import Secret
from fd2.serving.errors import ConfigError

# The drivers' endpoints in APISIX (apisix/plugins/ai-drivers/*.lua).
PROVIDER_ENDPOINTS: Final = {
    "openai": "https://api.openai.com/v1/chat/completions",
    "deepseek": "https://api.deepseek.com/chat/completions",
    "aimlapi": "https://api.aimlapi.com/v1/chat/completions",
    "openrouter": "https://openrouter.ai/api/v1/chat/completions",
    "gemini": "https://generativelanguage.googleapis.com/v1beta/openai/chat/completions",
}
_OVERRIDE_ONLY: Final = frozenset({"openai-compatible", "azure-openai"})
_CONVERTING: Final = frozenset({"anthropic", "vertex-ai", "bedrock"})
_ROLES: Final = frozenset({"system", "user", "assistant"})
_AUTH_NAME: Final = re.compile(r"^[a-zA-Z0-9._-]+$")
PLACEHOLDER: Final = re.compile(r"\{\{\s*(\w+)\s*\}\}")


class AiProxy:
    __slots__ = (
        "body_options",
        "headers",
        "ignored",
        "model",
        "node",
        "path",
        "provider",
        "query",
        "timeouts",
    )

    def __init__(self, provider: str, node: Node, path: str) -> None:
        self.provider = provider
        self.node = node
        self.path = path
        self.query: tuple[tuple[str, str | Secret], ...] = ()
        self.headers: tuple[HeaderOp, ...] = ()
        self.model: str | None = None
        self.body_options: tuple[tuple[str, Any], ...] = ()
        self.timeouts = UpstreamTimeouts()
        self.ignored: list[str] = []


def compile_ai_proxy(raw: Mapping[str, Any], where: str) -> AiProxy:
    config = decode(dict(raw), RawAiProxy, where)
    provider = config.provider
    options = dict(config.options or {})
    if provider is None and config.model is not None:  # the form before APISIX 3.12
        provider = config.model.provider
        options = {**(config.model.options or {}), **options}
        if config.model.name:
            options.setdefault("model", config.model.name)
    if not provider:
        raise ConfigError(f"{where} names no provider")
    endpoint = config.override.endpoint if config.override else None
    proxy = _target(provider, endpoint, where)
    if config.auth is not None:
        if config.auth.gcp is not None or config.auth.aws is not None:
            raise ConfigError(f"{where}.auth: gcp and aws credentials are not served")
        proxy.headers = tuple(
            HeaderOp(
                "set", _auth_name(name, f"{where}.auth.header"), (_auth_value(value, name, where),)
            )
            for name, value in (config.auth.header or {}).items()
        )
        # The endpoint's own query parameters win over auth.query's, as in APISIX's driver.
        pairs: dict[str, str | Secret] = {
            _auth_name(name, f"{where}.auth.query"): _auth_value(value, name, where)
            for name, value in (config.auth.query or {}).items()
        }
        pairs.update(proxy.query)
        proxy.query = tuple(pairs.items())
    model = options.pop("model", None)
    if model is not None and not isinstance(model, str):
        raise ConfigError(f"{where}.options.model must be a string")
    proxy.model = model or None
    if "stream" in options:
        options.pop("stream")
        proxy.ignored.append(f"{where}.options.stream")  # the client decides streaming
    proxy.body_options = tuple(options.items())
    seconds = config.timeout / 1000
    proxy.timeouts = UpstreamTimeouts(connect_s=seconds, send_s=seconds, read_s=seconds)
    if not config.ssl_verify:
        proxy.ignored.append(f"{where}.ssl_verify")  # fd2 always verifies upstream certificates
    if config.override is not None:
        for field in ("llm_options", "request_body"):
            if getattr(config.override, field):
                proxy.ignored.append(f"{where}.override.{field}")
    return proxy


def compile_templates(raw: Mapping[str, Any], where: str) -> tuple[PromptTemplate, ...]:
    config = decode(dict(raw), RawPromptTemplates, where)
    if not config.templates:
        raise ConfigError(f"{where}.templates must not be empty")
    templates: list[PromptTemplate] = []
    for index, item in enumerate(config.templates):
        label = f"{where}.templates[{index}]"
        if not item.name:
            raise ConfigError(f"{label}.name must not be empty")
        if any(template.name == item.name for template in templates):
            raise ConfigError(f"{where} has two templates named {item.name!r}")
        messages = []
        for number, message in enumerate(item.template.messages):
            if message.role not in _ROLES:
                raise ConfigError(
                    f"{label}.template.messages[{number}].role must be system, user or assistant"
                )
            if not message.content:
                raise ConfigError(f"{label}.template.messages[{number}].content is empty")
            messages.append((message.role, message.content))
        texts = [content for _, content in messages] + [item.template.model or ""]
        variables = frozenset(name for text in texts for name in PLACEHOLDER.findall(text))
        templates.append(
            PromptTemplate(item.name, item.template.model or None, tuple(messages), variables)
        )
    return tuple(templates)


def _target(provider: str, endpoint: str | None, where: str) -> AiProxy:
    if provider in _CONVERTING:
        raise ConfigError(
            f"{where}: provider {provider!r} needs a protocol conversion fd2 does not do "
            "(fd2 speaks OpenAI's chat completions to the upstream)"
        )
    default = PROVIDER_ENDPOINTS.get(provider)
    if default is None and provider not in _OVERRIDE_ONLY:
        raise ConfigError(f"{where}: provider {provider!r} is unknown")
    url = endpoint or default
    if url is None:
        raise ConfigError(f"{where}: provider {provider!r} needs override.endpoint")
    node, path, query = node_from_url(url, f"{where}.override.endpoint")
    if not path and default is not None:
        path = node_from_url(default, where)[1]  # a bare host keeps the driver's path
    proxy = AiProxy(provider, node, path or "/")
    proxy.query = tuple(parse_qsl(query, keep_blank_values=True))
    return proxy


def _auth_name(name: str, where: str) -> str:
    if not _AUTH_NAME.match(name):
        raise ConfigError(f"{where}: {name!r} is not a valid name")
    return name.lower() if where.endswith("header") else name


def _auth_value(value: Any, name: str, where: str) -> Secret:
    """ai-proxy's auth values are credentials: kept as `Secret`s whatever form they came in."""
    text = check_text(value, f"{where}.auth.{name}")
    return text if isinstance(text, Secret) else Secret(text, f"ai-proxy auth {name}")
