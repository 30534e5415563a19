"""What an endpoint calls: `prompt: {id, version, variables}` to rendered chat messages.

A module's own prompts (its config's `prompts`, from the manifest; `metadata.fd2.modules.<name>
.config.prompts` survives the Control Tower) are compiled when the module is set up; an id not
found there is looked up in the project's Redis store (cached, see `catalog`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fd2.prompts.compiled import CompiledVersion
from fd2.prompts.errors import PromptDefinitionError, PromptNotFound
from fd2.prompts.record import CompiledPrompt, check_id, compile_record
from fd2.serving.errors import BadRequest, ConfigError

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from fd2.prompts.catalog import SharedPrompts


@dataclass(frozen=True, slots=True)
class RenderedPrompt:
    prompt_id: str
    version: int
    messages: list[dict[str, str]]
    parameters: Mapping[str, Any]
    model: str | None
    output_schema: Mapping[str, Any] | None
    schema_name: str
    compiled: CompiledVersion


class PromptResolver:
    def __init__(
        self, project: str, own: Mapping[str, CompiledPrompt], shared: SharedPrompts | None
    ) -> None:
        self._project = project
        self._own = dict(own)
        self._shared = shared

    @classmethod
    def for_module(
        cls, project: str, config: Mapping[str, Any], redis: Redis | None
    ) -> PromptResolver:
        """From a module's config (ConfigError for a prompt that cannot be served)."""
        own = manifest_prompts(config.get("prompts"))
        shared = None
        if redis is not None:
            from fd2.prompts.catalog import shared_prompts

            shared = shared_prompts(redis)
        return cls(project, own, shared)

    async def find(self, prompt_id: str) -> CompiledPrompt:
        prompt = self._own.get(prompt_id)
        if prompt is None and self._shared is not None:
            prompt = await self._shared.get(self._project, prompt_id)
        if prompt is None:
            raise PromptNotFound(f"Prompt {prompt_id!r} does not exist.", param="prompt.id")
        return prompt

    async def render(self, reference: Any) -> RenderedPrompt:
        if not isinstance(reference, Mapping):
            raise BadRequest("'prompt' must be an object {id, version, variables}.", param="prompt")
        prompt = await self.find(check_id(reference.get("id")))
        version = prompt.version(reference.get("version"))
        variables = reference.get("variables")
        if variables is not None and not isinstance(variables, Mapping):
            raise BadRequest("'prompt.variables' must be an object.", param="prompt.variables")
        return rendered(version, variables)


def rendered(version: CompiledVersion, variables: Mapping[str, Any] | None) -> RenderedPrompt:
    source = version.source
    return RenderedPrompt(
        prompt_id=version.prompt_id,
        version=version.number,
        messages=version.render(_plain(variables)).messages,
        parameters=source.parameters,
        model=source.model,
        output_schema=source.output_schema,
        schema_name=source.output_schema_name,
        compiled=version,
    )


def _plain(variables: Mapping[str, Any] | None) -> dict[str, Any] | None:
    # OpenAI's prompt variables may be input items ({"type": "input_text", "text": ...}).
    if variables is None:
        return None
    out = {}
    for name, value in variables.items():
        if (
            isinstance(value, Mapping)
            and value.get("type") == "input_text"
            and isinstance(value.get("text"), str)
        ):
            value = value["text"]
        out[name] = value
    return out


def manifest_prompts(raw: Any) -> dict[str, CompiledPrompt]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError("config 'prompts' must be an object of prompts by id")
    out = {}
    for prompt_id, entry in raw.items():
        try:
            check_id(prompt_id)
            out[prompt_id] = compile_record(prompt_id, entry)
        except (PromptDefinitionError, PromptNotFound) as exc:
            raise ConfigError(f"config 'prompts': {exc.message}") from None
    return out
