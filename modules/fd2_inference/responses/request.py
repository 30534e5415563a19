"""A Responses API request as an OpenAI chat body (pure).

What the Responses API has and chat has not (built-in tools, files by id, background runs) is a
400 naming the field: never a silent mistranslation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from fd2.serving.errors import BadRequest

# Responses fields copied to chat as they are.
_SAME: Final = ("model", "temperature", "top_p", "user", "parallel_tool_calls", "top_logprobs")
# Responses fields accepted and not sent upstream (echoed in the answer, or meaningless here).
_KEPT: Final = frozenset(
    {
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "text",
        "max_output_tokens",
        "stream",
        "previous_response_id",
        "store",
        "metadata",
        "prompt",
        "truncation",
        "include",
        "reasoning",
        "service_tier",
        "stream_options",
        "prompt_cache_key",
        "safety_identifier",
        *_SAME,
    }
)
_ROLES: Final = {
    "user": "user",
    "assistant": "assistant",
    "system": "system",
    "developer": "system",
}


def check_fields(body: Mapping[str, Any]) -> None:
    for name in body:
        if name not in _KEPT:
            raise BadRequest(f"Unknown or unsupported parameter {name!r}.", param=name)
    if body.get("background"):
        raise BadRequest("Background responses are not supported.", param="background")


def input_messages(value: Any, param: str = "input") -> list[dict[str, Any]]:
    """`input` (a string or a list of items) as chat messages."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list):
        raise BadRequest(f"'{param}' must be a string or a list of items.", param=param)
    messages: list[dict[str, Any]] = []
    for index, item in enumerate(value):
        where = f"{param}[{index}]"
        if not isinstance(item, dict):
            raise BadRequest(f"'{where}' must be an object.", param=where)
        _add_item(messages, item, where)
    return messages


def _add_item(messages: list[dict[str, Any]], item: Mapping[str, Any], where: str) -> None:
    kind = item.get("type", "message")
    if kind == "message":
        role = _ROLES.get(str(item.get("role")))
        if role is None:
            raise BadRequest(
                f"'{where}.role' must be user, assistant, system or developer.",
                param=f"{where}.role",
            )
        messages.append(
            {"role": role, "content": _content(item.get("content"), f"{where}.content", role)}
        )
    elif kind == "function_call":
        call = {
            "id": _text(item, "call_id", where),
            "type": "function",
            "function": {
                "name": _text(item, "name", where),
                "arguments": _text(item, "arguments", where),
            },
        }
        last = messages[-1] if messages else None
        if last is not None and last["role"] == "assistant" and "tool_calls" in last:
            last["tool_calls"].append(call)
        else:
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
    elif kind == "function_call_output":
        output = item.get("output")
        if not isinstance(output, str):
            output = _parts_text(output, f"{where}.output")
        messages.append(
            {"role": "tool", "tool_call_id": _text(item, "call_id", where), "content": output}
        )
    elif kind == "reasoning":
        return  # a model's reasoning summary: nothing a chat model takes back
    else:
        raise BadRequest(f"Input items of type {kind!r} are not supported.", param=f"{where}.type")


def _text(item: Mapping[str, Any], name: str, where: str) -> str:
    value = item.get(name)
    if not isinstance(value, str):
        raise BadRequest(f"'{where}.{name}' must be a string.", param=f"{where}.{name}")
    return value


def _content(value: Any, where: str, role: str) -> str | list[dict[str, Any]]:
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        raise BadRequest(f"'{where}' must be a string or a list of content parts.", param=where)
    if role != "user":
        return _parts_text(value, where)
    parts: list[dict[str, Any]] = []
    for index, part in enumerate(value):
        at = f"{where}[{index}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text"):
            parts.append({"type": "text", "text": _text(part, "text", at)})
        elif kind == "input_image":
            url = part.get("image_url")
            if not isinstance(url, str):
                raise BadRequest(
                    f"'{at}.image_url' must be a URL (file ids are not supported).",
                    param=f"{at}.image_url",
                )
            image: dict[str, Any] = {"url": url}
            if isinstance(part.get("detail"), str):
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
        else:
            raise BadRequest(
                f"Content parts of type {kind!r} are not supported.", param=f"{at}.type"
            )
    return parts


def _parts_text(value: Any, where: str) -> str:
    if not isinstance(value, list):
        raise BadRequest(f"'{where}' must be a string or a list of text parts.", param=where)
    texts = []
    for index, part in enumerate(value):
        if not isinstance(part, dict) or not isinstance(part.get("text"), str):
            raise BadRequest(f"'{where}[{index}]' must be a text part.", param=f"{where}[{index}]")
        texts.append(part["text"])
    return "".join(texts)


def chat_tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise BadRequest("'tools' must be a list.", param="tools")
    out = []
    for index, tool in enumerate(tools):
        where = f"tools[{index}]"
        if not isinstance(tool, dict) or tool.get("type") != "function":
            kind = tool.get("type") if isinstance(tool, dict) else None
            raise BadRequest(
                f"Tools of type {kind!r} are not supported (function tools are).",
                param=f"{where}.type",
            )
        function: dict[str, Any] = {"name": _text(tool, "name", where)}
        for key in ("description", "parameters", "strict"):
            if tool.get(key) is not None:
                function[key] = tool[key]
        out.append({"type": "function", "function": function})
    return out


def chat_tool_choice(value: Any) -> Any:
    if value in ("auto", "none", "required"):
        return value
    if (
        isinstance(value, dict)
        and value.get("type") == "function"
        and isinstance(value.get("name"), str)
    ):
        return {"type": "function", "function": {"name": value["name"]}}
    raise BadRequest(
        "'tool_choice' must be auto, none, required or a function.", param="tool_choice"
    )


def response_format(text: Any) -> dict[str, Any] | None:
    """`text.format` as chat's `response_format` (None: plain text)."""
    if text is None:
        return None
    fmt = text.get("format") if isinstance(text, dict) else None
    if fmt is None:
        return None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        assert isinstance(fmt, dict)
        if not isinstance(fmt.get("schema"), dict):
            raise BadRequest(
                "'text.format.schema' must be a JSON Schema object.", param="text.format.schema"
            )
        schema = {"name": fmt.get("name") or "response", "schema": fmt["schema"]}
        for key in ("strict", "description"):
            if fmt.get(key) is not None:
                schema[key] = fmt[key]
        return {"type": "json_schema", "json_schema": schema}
    raise BadRequest(
        "'text.format.type' must be text, json_object or json_schema.", param="text.format.type"
    )


def chat_body(
    body: Mapping[str, Any],
    history: Sequence[Mapping[str, Any]],
    prompt_messages: Sequence[Mapping[str, Any]] = (),
    prompt_parameters: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The chat body for a Responses request: the prompt's rendered messages, `instructions` as
    the system message, the earlier turns (`previous_response_id`), then `input`."""
    messages: list[dict[str, Any]] = [dict(m) for m in prompt_messages]
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise BadRequest("'instructions' must be a string.", param="instructions")
        messages.insert(0, {"role": "system", "content": instructions})
    messages.extend(dict(m) for m in history)
    if body.get("input") is not None:
        messages.extend(input_messages(body["input"]))
    if not messages:
        raise BadRequest(
            "A response needs 'input' (or a prompt that renders messages).", param="input"
        )
    out: dict[str, Any] = dict(prompt_parameters or {})
    out["messages"] = messages
    for name in _SAME:
        if body.get(name) is not None:
            out[name] = body[name]
    if body.get("max_output_tokens") is not None:
        out["max_tokens"] = body["max_output_tokens"]
    if body.get("tools"):
        out["tools"] = chat_tools(body["tools"])
    if body.get("tool_choice") is not None:
        out["tool_choice"] = chat_tool_choice(body["tool_choice"])
    fmt = response_format(body.get("text"))
    if fmt is not None:
        out["response_format"] = fmt
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and isinstance(reasoning.get("effort"), str):
        out["reasoning_effort"] = reasoning["effort"]
    if not isinstance(out.get("model"), str) or not out["model"]:
        out.pop("model", None)  # the module's default model, if it has one, fills it in
    return out
