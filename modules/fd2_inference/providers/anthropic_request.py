"""OpenAI chat request body -> Anthropic Messages API body (pure; see providers/anthropic.py).

What is translated, and how (docs/providers_anthropic.md says the same for users):
- system and developer messages, wherever they stand, become the top-level `system` (Anthropic
  has no system turns); consecutive turns of one role are merged, tool messages become
  `tool_result` blocks of a user turn, assistant `tool_calls` become `tool_use` blocks.
- `max_completion_tokens`, else `max_tokens`, else the module's default: Anthropic requires one.
- `stop` -> `stop_sequences`, `user` -> `metadata.user_id`, `tools` -> `tools` (`input_schema`,
  `strict`), `tool_choice` and `parallel_tool_calls` -> `tool_choice`,
  `response_format` json_schema -> `output_config.format` (Anthropic's structured outputs),
  json_object -> a forced call of one tool whose input (any JSON object) is the answer.
- Anything else Anthropic cannot honour goes through the module's parameter policy: refused with
  a 400 naming it, or dropped. Message `name`s and image `detail` hints have no Anthropic
  counterpart and are not sent (they only ever inform the model, never change the shape).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson

from fd2.serving.errors import BadRequest
from fd2_inference.providers.base import ParamPolicy, UnsupportedParams

PROVIDER: Final = "anthropic"

# Fields fd2 reads itself or that only shape delivery: never sent, never refused.
_CONSUMED: Final = frozenset({"model", "messages", "stream", "stream_options"})
_TRANSLATED: Final = frozenset(
    {
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stop",
        "n",
        "user",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
    }
)
# Anthropic accepts 0..1; OpenAI 0..2. Values above 1 have no Anthropic equivalent.
_MAX_TEMPERATURE: Final = 1.0
JSON_OBJECT_TOOL: Final = {
    "name": "fd2_json_object",
    "description": "Give the whole answer as this tool's input: one JSON object.",
    "input_schema": {"type": "object"},
}
"""The tool a `json_object` request is forced to call (its input is the answer)."""
_IMAGE_TYPES: Final = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


def messages_body(
    body: Mapping[str, Any], *, default_max_tokens: int, policy: ParamPolicy, stream: bool
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The Messages API body for an OpenAI chat request body, and the parameters left out under
    the `drop` policy (the module logs them)."""
    unsupported = UnsupportedParams(PROVIDER, policy)
    for key in body:
        if key not in _CONSUMED and key not in _TRANSLATED:
            unsupported(key)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("A 'model' is required.", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty array.", param="messages")
    system, turns = _turns(messages, unsupported)
    out: dict[str, Any] = {"model": model, "max_tokens": _max_tokens(body, default_max_tokens)}
    if system:
        out["system"] = system[0]["text"] if len(system) == 1 else system
    out["messages"] = turns
    _sampling(body, out, unsupported)
    _tools(body, out)
    _response_format(body.get("response_format"), out, unsupported)
    user = body.get("user")
    if isinstance(user, str) and user:
        out["metadata"] = {"user_id": user}
    if stream:
        out["stream"] = True
    return out, tuple(dict.fromkeys(unsupported.dropped))


def _max_tokens(body: Mapping[str, Any], default: int) -> int:
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise BadRequest(f"'{key}' must be a positive integer.", param=key)
        return value
    return default


def _sampling(body: Mapping[str, Any], out: dict[str, Any], unsupported: UnsupportedParams) -> None:
    temperature = body.get("temperature")
    if temperature is not None:
        if not isinstance(temperature, int | float) or isinstance(temperature, bool):
            raise BadRequest("'temperature' must be a number.", param="temperature")
        if temperature > _MAX_TEMPERATURE:
            unsupported("temperature", ": Anthropic accepts 0 to 1")
        else:
            out["temperature"] = temperature
    top_p = body.get("top_p")
    if top_p is not None:
        out["top_p"] = top_p
    stop = body.get("stop")
    if isinstance(stop, str):
        out["stop_sequences"] = [stop]
    elif isinstance(stop, list) and stop:
        out["stop_sequences"] = stop
    n = body.get("n")
    if n is not None and n != 1:
        unsupported("n", ": Anthropic answers with one choice")


def _tools(body: Mapping[str, Any], out: dict[str, Any]) -> None:
    tools = body.get("tools")
    if isinstance(tools, list) and tools:
        out["tools"] = [_tool(tool) for tool in tools]
    choice = _tool_choice(body.get("tool_choice"))
    if body.get("parallel_tool_calls") is False and "tools" in out:
        choice = dict(choice or {"type": "auto"})
        choice["disable_parallel_tool_use"] = True
    if choice is not None:
        if choice["type"] == "none" and "tools" not in out:
            return  # nothing to forbid; Anthropic wants tools beside a tool_choice
        out["tool_choice"] = choice


def _tool(tool: object) -> dict[str, Any]:
    if not isinstance(tool, Mapping) or tool.get("type") != "function":
        raise BadRequest("Only tools of type 'function' are supported.", param="tools")
    function = tool.get("function")
    if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
        raise BadRequest("A tool's function needs a 'name'.", param="tools")
    parameters = function.get("parameters")
    out: dict[str, Any] = {"name": function["name"]}
    if isinstance(function.get("description"), str):
        out["description"] = function["description"]
    # A function without parameters takes none: Anthropic requires an object schema.
    out["input_schema"] = (
        parameters if isinstance(parameters, Mapping) else {"type": "object", "properties": {}}
    )
    if function.get("strict") is True:
        out["strict"] = True
    return out


def _tool_choice(choice: object) -> dict[str, Any] | None:
    if choice is None:
        return None
    if choice == "auto":
        return {"type": "auto"}
    if choice == "none":
        return {"type": "none"}
    if choice == "required":
        return {"type": "any"}
    if isinstance(choice, Mapping) and choice.get("type") == "function":
        function = choice.get("function")
        if isinstance(function, Mapping) and isinstance(function.get("name"), str):
            return {"type": "tool", "name": function["name"]}
    raise BadRequest("Unsupported 'tool_choice'.", param="tool_choice")


def _response_format(value: object, out: dict[str, Any], unsupported: UnsupportedParams) -> None:
    if value is None:
        return
    kind = value.get("type") if isinstance(value, Mapping) else None
    if kind == "text":
        return
    if kind == "json_schema":
        assert isinstance(value, Mapping)
        spec = value.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        if not isinstance(schema, Mapping):
            raise BadRequest(
                "response_format json_schema needs a 'json_schema.schema' object.",
                param="response_format",
            )
        out["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
        return
    if kind == "json_object":
        # Anthropic's structured outputs need a schema; a forced tool whose input is any object
        # is how its documentation gets JSON out otherwise. The answer's input becomes the
        # content (anthropic_answer.py), so the client sees what OpenAI would have sent.
        if "tools" in out:
            unsupported("response_format", ": json_object together with tools")
            return
        out["tools"] = [JSON_OBJECT_TOOL]
        out["tool_choice"] = {"type": "tool", "name": JSON_OBJECT_TOOL["name"]}
        return
    raise BadRequest("Unsupported 'response_format'.", param="response_format")


def _turns(
    messages: Sequence[object], unsupported: UnsupportedParams
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        if not isinstance(message, Mapping):
            raise BadRequest("Each message must be an object.", param="messages")
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend({"type": "text", "text": text} for text in _texts(message, role))
            continue
        if role == "user":
            content: str | list[dict[str, Any]] = _user_content(message.get("content"), unsupported)
        elif role == "assistant":
            content = _assistant_content(message)
            if not content:
                continue  # an empty assistant turn says nothing; Anthropic refuses it
        elif role == "tool":
            role, content = "user", [_tool_result(message)]
        else:
            unsupported("messages", f": message role {role!r}")
            continue
        _append(turns, role, content)
    return system, turns


def _append(turns: list[dict[str, Any]], role: str, content: str | list[dict[str, Any]]) -> None:
    # Anthropic wants user and assistant turns to alternate: one role's consecutive messages
    # (several tool results, a tool result then the user's text) become one turn.
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"] = _blocks(turns[-1]["content"]) + _blocks(content)
    else:
        turns.append({"role": role, "content": content})


def _blocks(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def _texts(message: Mapping[str, Any], role: object) -> list[str]:
    content = message.get("content")
    if isinstance(content, str):
        return [content] if content else []
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, Mapping) or part.get("type") != "text":
                raise BadRequest(f"A {role} message may hold text parts only.", param="messages")
            texts.append(str(part.get("text", "")))
        return texts
    raise BadRequest(f"A {role} message needs a 'content'.", param="messages")


def _user_content(content: object, unsupported: UnsupportedParams) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise BadRequest("A user message needs a 'content'.", param="messages")
    blocks: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind == "text":
            blocks.append({"type": "text", "text": str(part.get("text", ""))})
        elif kind == "image_url":
            blocks.append(_image(part.get("image_url")))
        else:
            unsupported("messages", f": content parts of type {kind!r}")
    return blocks


def _image(image: object) -> dict[str, Any]:
    url = image.get("url") if isinstance(image, Mapping) else None
    if not isinstance(url, str) or not url:
        raise BadRequest("An image_url part needs a 'url'.", param="messages")
    if not url.startswith("data:"):
        return {"type": "image", "source": {"type": "url", "url": url}}
    header, comma, data = url[5:].partition(",")
    media_type, _, encoding = header.partition(";")
    if not comma or encoding != "base64" or media_type not in _IMAGE_TYPES:
        raise BadRequest(
            "A data: image URL must be base64 JPEG, PNG, GIF or WebP.", param="messages"
        )
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _assistant_content(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    content = message.get("content")
    if isinstance(content, str):
        if content:
            blocks.append({"type": "text", "text": content})
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, Mapping) and part.get("type") == "text" and part.get("text"):
                blocks.append({"type": "text", "text": str(part["text"])})
            elif isinstance(part, Mapping) and part.get("type") == "refusal":
                blocks.append({"type": "text", "text": str(part.get("refusal", ""))})
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        blocks.extend(_tool_use(call) for call in calls)
    return blocks


def _tool_use(call: object) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, Mapping) else None
    if not isinstance(call, Mapping) or not isinstance(function, Mapping):
        raise BadRequest("A tool call needs a 'function'.", param="messages")
    arguments = function.get("arguments") or "{}"
    try:
        parsed = orjson.loads(arguments)
    except (orjson.JSONDecodeError, TypeError):
        parsed = None
    if not isinstance(parsed, dict):
        raise BadRequest(
            "A tool call's 'arguments' must be a JSON object (Anthropic sends tool input as one).",
            param="messages",
        )
    return {"type": "tool_use", "id": call.get("id"), "name": function.get("name"), "input": parsed}


def _tool_result(message: Mapping[str, Any]) -> dict[str, Any]:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise BadRequest("A tool message needs a 'tool_call_id'.", param="messages")
    content = message.get("content")
    result: dict[str, Any] = {"type": "tool_result", "tool_use_id": call_id}
    if isinstance(content, str):
        result["content"] = content
    elif isinstance(content, list):
        result["content"] = [
            {"type": "text", "text": str(part.get("text", ""))}
            for part in content
            if isinstance(part, Mapping) and part.get("type") == "text"
        ]
    return result
