"""An OpenAI chat request as a Cohere v2 `POST /v2/chat` body.

Cohere v2 is close to OpenAI: the same roles, `tool_calls` with ids and JSON-string arguments,
`tool_call_id` on tool results, function tools, `image_url` content parts. What differs:
sampling names (`p`, `stop_sequences`), `tool_choice` (only REQUIRED and NONE), `strict_tools`
for the whole request instead of per tool, structured output as `json_object` with an optional
`json_schema`, and an assistant's words before its tool calls, which Cohere calls `tool_plan`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from fd2.serving.errors import BadRequest

Unsupported = Callable[[str, str], None]
"""Called with (param, why) for what Cohere cannot honour; raises under the refuse policy."""

_HANDLED: Final = frozenset(
    {
        "model",
        "messages",
        "stream",
        "stream_options",
        "temperature",
        "top_p",
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "n",
        "presence_penalty",
        "frequency_penalty",
        "seed",
        "response_format",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        # An end-user id for OpenAI's abuse monitoring; nothing about the answer depends on it.
        "user",
    }
)
_P_MIN: Final = 0.01
_P_MAX: Final = 0.99
_COPIED: Final = (
    ("temperature", "temperature"),
    ("presence_penalty", "presence_penalty"),
    ("frequency_penalty", "frequency_penalty"),
    ("seed", "seed"),
)


def chat_request(
    body: Mapping[str, Any], unsupported: Unsupported, *, stream: bool
) -> dict[str, Any]:
    for key, value in body.items():
        if key not in _HANDLED and value is not None:
            unsupported(key, "")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("'model' must name a Cohere model.", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise BadRequest("'messages' must be a list.", param="messages")
    out: dict[str, Any] = {
        "model": model,
        "messages": [_message(m, f"messages[{i}]", unsupported) for i, m in enumerate(messages)],
    }
    if stream:
        out["stream"] = True
    for name, cohere in _COPIED:
        if body.get(name) is not None:
            out[cohere] = body[name]
    top_p = body.get("top_p")
    if isinstance(top_p, int | float) and not isinstance(top_p, bool):
        # Cohere takes p in [0.01, 0.99] and samples with p 0.75 when none is sent: OpenAI's
        # top_p 1 (no nucleus cut) is nearest to 0.99, not to leaving p out.
        out["p"] = min(max(float(top_p), _P_MIN), _P_MAX)
    elif top_p is not None:
        out["p"] = top_p  # not a number: Cohere's 400 says so
    limit = body.get("max_completion_tokens")
    if limit is None:
        limit = body.get("max_tokens")
    if limit is not None:
        out["max_tokens"] = limit
    stop = body.get("stop")
    if stop is not None:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else stop
    if body.get("n") not in (None, 1):
        unsupported("n", ": Cohere gives one answer per request")
    if body.get("parallel_tool_calls") is False:
        unsupported("parallel_tool_calls", ": Cohere cannot be told to call one tool at a time")
    if body.get("response_format") is not None:
        out.update(_response_format(body["response_format"], unsupported))
    _tools(body, out, unsupported)
    return out


def _response_format(value: Any, unsupported: Unsupported) -> dict[str, Any]:
    kind = value.get("type") if isinstance(value, Mapping) else None
    if kind == "text":
        return {}
    if kind == "json_object":
        return {"response_format": {"type": "json_object"}}
    if kind == "json_schema":
        spec = value.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        if not isinstance(schema, Mapping):
            raise BadRequest(
                "'response_format.json_schema.schema' must be a JSON Schema object.",
                param="response_format.json_schema.schema",
            )
        return {"response_format": {"type": "json_object", "json_schema": schema}}
    unsupported("response_format", f": the type {kind!r}")
    return {}


def _tools(body: Mapping[str, Any], out: dict[str, Any], unsupported: Unsupported) -> None:
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise BadRequest("'tools' must be a list.", param="tools")
    functions: list[dict[str, Any]] = []
    strict: list[bool] = []
    for i, tool in enumerate(tools or ()):
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if not isinstance(function, Mapping) or tool.get("type") != "function":
            unsupported(f"tools[{i}]", ": Cohere takes function tools only")
            continue
        functions.append(
            {
                "type": "function",
                "function": {k: v for k, v in function.items() if k != "strict" and v is not None},
            }
        )
        strict.append(function.get("strict") is True)
    choice = body.get("tool_choice")
    if isinstance(choice, Mapping) and choice.get("type") == "function":
        # Cohere cannot name the tool to call; offering only that tool and requiring a call asks
        # for the same thing.
        name = (
            choice.get("function", {}).get("name")
            if isinstance(choice.get("function"), Mapping)
            else None
        )
        kept = [
            (f, s)
            for f, s in zip(functions, strict, strict=True)
            if f["function"].get("name") == name
        ]
        if not kept:
            raise BadRequest(
                "'tool_choice' names a function that is not in 'tools'.", param="tool_choice"
            )
        functions, strict = [kept[0][0]], [kept[0][1]]
        out["tool_choice"] = "REQUIRED"
    elif choice == "required":
        out["tool_choice"] = "REQUIRED"
    elif choice == "none":
        out["tool_choice"] = "NONE"
    elif choice not in (None, "auto"):
        unsupported("tool_choice", "")
    if functions:
        out["tools"] = functions
        # Cohere's strict mode covers every tool of a request: on only when each asked for it.
        if all(strict):
            out["strict_tools"] = True


def _message(message: Any, where: str, unsupported: Unsupported) -> dict[str, Any]:
    if not isinstance(message, Mapping):
        raise BadRequest(f"'{where}' must be an object.", param=where)
    role = message.get("role")
    content = message.get("content")
    if role in ("system", "developer"):
        return {"role": "system", "content": _text(content, where, unsupported)}
    if role == "user":
        return {"role": "user", "content": _user_content(content, where, unsupported)}
    if role == "assistant":
        return _assistant(message, where, unsupported)
    if role == "tool":
        call_id = message.get("tool_call_id")
        if not isinstance(call_id, str):
            raise BadRequest(
                f"'{where}.tool_call_id' must be a string.", param=f"{where}.tool_call_id"
            )
        return {
            "role": "tool",
            "tool_call_id": call_id,
            "content": _text(content, where, unsupported),
        }
    unsupported(f"{where}.role", f": the role {role!r}")
    return {"role": "user", "content": ""}


def _text(content: Any, where: str, unsupported: Unsupported) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        raise BadRequest(f"'{where}.content' must be a string or a list.", param=f"{where}.content")
    texts = []
    for j, item in enumerate(content):
        kind = item.get("type") if isinstance(item, Mapping) else None
        if kind in ("text", "refusal"):
            texts.append(str(item.get(kind, "")))
        else:
            unsupported(f"{where}.content[{j}]", f": Cohere takes only text here, not {kind!r}")
    return "".join(texts)


def _user_content(content: Any, where: str, unsupported: Unsupported) -> Any:
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        raise BadRequest(f"'{where}.content' must be a string or a list.", param=f"{where}.content")
    parts: list[dict[str, Any]] = []
    for j, item in enumerate(content):
        kind = item.get("type") if isinstance(item, Mapping) else None
        if kind == "text":
            parts.append({"type": "text", "text": item.get("text", "")})
        elif kind == "image_url" and isinstance(item.get("image_url"), Mapping):
            # Cohere takes an image URL or a base64 data URL, with OpenAI's `detail` values.
            image = {k: v for k, v in item["image_url"].items() if k in ("url", "detail")}
            parts.append({"type": "image_url", "image_url": image})
        else:
            unsupported(f"{where}.content[{j}]", f": the content type {kind!r}")
    return parts


def _assistant(message: Mapping[str, Any], where: str, unsupported: Unsupported) -> dict[str, Any]:
    text = _text(message.get("content"), where, unsupported)
    calls = message.get("tool_calls")
    if not calls:
        return {"role": "assistant", "content": text}
    if not isinstance(calls, list):
        raise BadRequest(f"'{where}.tool_calls' must be a list.", param=f"{where}.tool_calls")
    out: dict[str, Any] = {
        "role": "assistant",
        "tool_calls": [_call(c, f"{where}.tool_calls[{j}]") for j, c in enumerate(calls)],
    }
    if text:
        out["tool_plan"] = text  # what the assistant said before calling: Cohere's tool plan
    return out


def _call(call: Any, at: str) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, Mapping) else None
    if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
        raise BadRequest(f"'{at}.function.name' must be a string.", param=f"{at}.function")
    arguments = function.get("arguments")
    return {
        "id": call.get("id"),
        "type": "function",
        "function": {
            "name": function["name"],
            "arguments": arguments if isinstance(arguments, str) else "{}",
        },
    }
