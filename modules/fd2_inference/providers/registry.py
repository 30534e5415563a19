"""Provider names (the module config's `provider` setting) to the classes that translate them.

One line per provider: `"name": "module:Class"`, imported only when a module names it (a
provider's dependencies cost nothing to deployments that do not use it). A provider class is
built as `Class(settings: ProviderSettings)` and must satisfy `base.Provider`.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any, Final, cast

from fd2.serving.errors import ConfigError
from fd2_inference.providers.base import Provider, ProviderSettings

PROVIDERS: Final[dict[str, str]] = {
    "openai": "fd2_inference.providers.openai:OpenAIProvider",
    "azure": "fd2_inference.providers.azure:AzureProvider",
    "anthropic": "fd2_inference.providers.anthropic:AnthropicProvider",
    "gemini": "fd2_inference.providers.gemini:GeminiProvider",
    "cohere": "fd2_inference.providers.cohere:CohereProvider",
    "bedrock": "fd2_inference.providers.bedrock:BedrockProvider",
}

DEFAULT_PROVIDER: Final = "openai"
"""No `provider` setting: an OpenAI-compatible server, relayed byte for byte."""


def build_provider(settings: ProviderSettings) -> Provider:
    """The provider `settings.name` names, built from `settings`; ConfigError when it is unknown
    or not available in this build."""
    target = PROVIDERS.get(settings.name)
    if target is None:
        raise ConfigError(
            f"inference module config names unknown provider {settings.name!r} "
            f"(known: {', '.join(sorted(PROVIDERS))})"
        )
    try:
        cls = _class_of(target)
    except ModuleNotFoundError as exc:
        if exc.name != target.partition(":")[0]:
            raise  # a dependency of the provider is missing: a broken install, said as it is
        raise ConfigError(
            f"provider {settings.name!r} is not available in this build of fd2"
        ) from None
    return cast(Provider, cls(settings))


@cache
def _class_of(target: str) -> Any:
    """The class `module:Class` names, imported once (a failed import is tried again, and
    raises again, on the next module that names it)."""
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)
