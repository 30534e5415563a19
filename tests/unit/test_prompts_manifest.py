"""Prompts from a module's config (the manifest): checked whole when the module is set up; a
prompt that cannot be served is a ConfigError naming it (the module answers 503, `fd2 check`
fails); versions and labels resolve as requests name them."""

from __future__ import annotations

from typing import Any

import pytest

from fd2.prompts.errors import PromptNotFound
from fd2.prompts.resolve import manifest_prompts
from fd2.serving.errors import ConfigError

V = {"messages": [{"role": "user", "content": "v{{ n }}"}]}


def _record(**extra: Any) -> dict[str, Any]:
    return {"versions": [V, V, V], **extra}


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ({"p": _record(labels={"production": 7})}, "points at version 7, which does not exist"),
        ({"p": _record(labels={"latest": 1})}, "'latest' cannot be a label"),
        ({"p": _record(labels={"Bad Label": 1})}, "cannot be a label"),
        ({"p": {"versions": []}}, "has no versions"),
        ({"p": {"versions": [V], "surprise": 1}}, "surprise"),
        ({"../x": _record()}, "prompt id"),
        ([], "must be an object"),
    ],
)
def test_a_prompt_that_cannot_be_served_is_a_config_error(raw: Any, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        manifest_prompts(raw)
    assert says in caught.value.message


def test_versions_and_labels_resolve() -> None:
    prompt = manifest_prompts({"p": _record(labels={"production": 2, "beta": 3})})["p"]
    assert prompt.version(None).number == 2  # production
    assert prompt.version("latest").number == 3
    assert prompt.version("beta").number == 3
    assert prompt.version("1").number == 1
    assert prompt.version(1).number == 1
    without = manifest_prompts({"p": _record()})["p"]
    assert without.version(None).number == 3  # no production: latest
    for wanted in ("9", "gamma", 1.5, True):
        with pytest.raises(PromptNotFound):
            prompt.version(wanted)
