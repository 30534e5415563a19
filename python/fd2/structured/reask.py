"""Ask for an answer that matches a JSON Schema, and ask again (a bounded number of times)
quoting the validation errors when it does not.

The schema goes to the provider's native structured output (chat's `response_format`
json_schema, which every fd2 provider translates to its own feature) unless the caller says
`native=False`; then it is written into the prompt. The answer is parsed and validated here
either way: a provider's "strict" mode is not trusted to be strict.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from fd2.structured.validator import Schema

ChatCall = Callable[[dict[str, Any]], Awaitable[Mapping[str, Any]]]
"""Runs one chat completion request body, returns the `chat.completion` object."""

MAX_ATTEMPTS: Final = 5
_SCHEMA_PROMPT: Final = (
    "Answer with one JSON value and nothing else (no prose, no code fence). "
    "It must match this JSON Schema:\n"
)


@dataclass(slots=True)
class StructuredResult:
    value: Any
    """The parsed answer (None when the last answer was not JSON)."""
    text: str
    validated: bool
    attempts: int
    errors: list[str]
    """What was wrong with the last answer (empty when validated)."""
    answer: Mapping[str, Any]
    """The last chat completion."""
    usage: dict[str, int] = field(default_factory=dict)
    """prompt_tokens / completion_tokens summed over every attempt."""


def with_schema(
    body: Mapping[str, Any], schema: Schema, name: str, *, native: bool
) -> dict[str, Any]:
    """`body` asking for `schema`: natively (`response_format`) or in a system message."""
    out = dict(body)
    if native and not schema.source:
        # Any JSON value: the providers' JSON mode (OpenAI wants the word JSON in the prompt).
        out["response_format"] = {"type": "json_object"}
        note = {"role": "system", "content": "Answer in JSON."}
        out["messages"] = [note, *body.get("messages", ())]
        return out
    if native:
        out["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": name, "schema": schema.source},
        }
        return out
    out.pop("response_format", None)
    instruction = {
        "role": "system",
        "content": _SCHEMA_PROMPT + orjson.dumps(schema.source).decode(),
    }
    out["messages"] = [instruction, *body.get("messages", ())]
    return out


def parse(text: str) -> tuple[Any, str | None]:
    """The JSON in an answer (a fenced block is unwrapped: prompt-only models write them)."""
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.strip("`")
        first_line, _, rest = stripped.partition("\n")
        stripped = rest if first_line.strip().isalpha() or not first_line.strip() else stripped
        stripped = stripped.strip().removesuffix("```").strip()
    try:
        return orjson.loads(stripped), None
    except orjson.JSONDecodeError as exc:
        return None, f"$: the answer is not valid JSON ({exc.msg} at character {exc.pos})"


def _reask(errors: list[str]) -> str:
    listed = "\n".join(f"- {error}" for error in errors)
    return (
        "Your previous answer does not match the required JSON Schema:\n"
        f"{listed}\n"
        "Answer again with the corrected JSON only."
    )


def _text(answer: Mapping[str, Any]) -> str:
    try:
        content = answer["choices"][0]["message"].get("content")
    except (KeyError, IndexError, TypeError, AttributeError):
        return ""
    return content if isinstance(content, str) else ""


async def structured_chat(
    call: ChatCall,
    body: Mapping[str, Any],
    schema: Schema,
    *,
    name: str = "output",
    native: bool = True,
    max_attempts: int = 3,
) -> StructuredResult:
    """Ask, validate, re-ask with the errors, at most `max_attempts` calls in all."""
    attempts_allowed = max(1, min(max_attempts, MAX_ATTEMPTS))
    request = with_schema(body, schema, name, native=native)
    usage = {"prompt_tokens": 0, "completion_tokens": 0}
    result: StructuredResult | None = None
    for attempt in range(1, attempts_allowed + 1):
        answer = await call(request)
        for key in usage:
            value = (answer.get("usage") or {}).get(key)
            usage[key] += value if isinstance(value, int) else 0
        text = _text(answer)
        value, problem = parse(text)
        errors = [problem] if problem is not None else schema.errors(value)
        result = StructuredResult(value, text, not errors, attempt, errors, answer, usage)
        if not errors:
            return result
        # The conversation goes on: the model sees its answer and what is wrong with it.
        request = {
            **request,
            "messages": [
                *request["messages"],
                {"role": "assistant", "content": text},
                {"role": "user", "content": _reask(errors)},
            ],
        }
    assert result is not None
    return result
