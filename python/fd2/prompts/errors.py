"""The errors of prompts: OpenAI-shaped 400/404s that name the problem and never show a value
of the caller's variables or a stack."""

from __future__ import annotations

from fd2.serving.errors import BadRequest, NotFound


class PromptNotFound(NotFound):
    code = "prompt_not_found"


class PromptInputError(BadRequest):
    """A variable missing, of the wrong type, or refused by the version's input schema."""

    code = "invalid_prompt_variables"


class PromptTemplateError(BadRequest):
    """A template that cannot be rendered: an undefined name, a sandbox refusal, a bound hit."""

    code = "prompt_template_error"


class PromptDefinitionError(BadRequest):
    """A prompt version that cannot be created (bad template, invalid JSON Schema, ...)."""

    code = "invalid_prompt_version"
