"""A prompt with its versions compiled: what a lookup returns and renders from."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from fd2.prompts.compiled import CompiledVersion
from fd2.prompts.errors import PromptDefinitionError, PromptNotFound
from fd2.prompts.models import ID_PATTERN, LABEL_PATTERN, LATEST, PRODUCTION, PromptRecord


class CompiledPrompt:
    __slots__ = ("labels", "prompt_id", "versions")

    def __init__(
        self, prompt_id: str, versions: Mapping[int, CompiledVersion], labels: Mapping[str, int]
    ) -> None:
        self.prompt_id = prompt_id
        self.versions = dict(versions)
        self.labels = dict(labels)

    @property
    def latest(self) -> int:
        return max(self.versions)

    def version(self, wanted: Any) -> CompiledVersion:
        """`wanted`: a number (or its digits), a label, or None (`production` when set, else
        `latest`)."""
        if wanted is None or wanted == "":
            number = self.labels.get(PRODUCTION, self.latest)
        elif isinstance(wanted, int) and not isinstance(wanted, bool):
            number = wanted
        elif isinstance(wanted, str) and wanted.isdigit():
            number = int(wanted)
        elif isinstance(wanted, str):
            if wanted == LATEST:
                number = self.latest
            elif wanted in self.labels:
                number = self.labels[wanted]
            else:
                raise PromptNotFound(
                    f"Prompt {self.prompt_id!r} has no label {wanted[:64]!r}.",
                    param="prompt.version",
                )
        else:
            raise PromptNotFound(
                "'prompt.version' must be a version number or a label.", param="prompt.version"
            )
        compiled = self.versions.get(number)
        if compiled is None:
            raise PromptNotFound(
                f"Prompt {self.prompt_id!r} has no version {number}.", param="prompt.version"
            )
        return compiled


def check_id(prompt_id: Any, param: str = "prompt.id") -> str:
    if not isinstance(prompt_id, str) or not ID_PATTERN.match(prompt_id):
        raise PromptNotFound(
            "A prompt id is 1 to 128 letters, digits, '_', '.' or '-'.", param=param
        )
    return prompt_id


def compile_record(prompt_id: str, raw: Any) -> CompiledPrompt:
    """A manifest's prompt entry, checked whole (PromptDefinitionError names the problem)."""
    try:
        record = msgspec.convert(raw, PromptRecord)
    except msgspec.ValidationError as exc:
        raise PromptDefinitionError(f"prompt {prompt_id!r}: {exc}", param="prompts") from None
    if not record.versions:
        raise PromptDefinitionError(f"prompt {prompt_id!r} has no versions.", param="prompts")
    versions = {n: CompiledVersion(prompt_id, n, v) for n, v in enumerate(record.versions, start=1)}
    for label, number in record.labels.items():
        if not LABEL_PATTERN.match(label) or label == LATEST:
            raise PromptDefinitionError(
                f"prompt {prompt_id!r}: {label!r} cannot be a label.", param="labels"
            )
        if number not in versions:
            raise PromptDefinitionError(
                f"prompt {prompt_id!r}: label {label!r} points at version {number}, "
                "which does not exist.",
                param="labels",
            )
    return CompiledPrompt(prompt_id, versions, record.labels)
