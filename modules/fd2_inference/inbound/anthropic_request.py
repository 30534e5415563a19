"""An Anthropic Messages API request body -> the OpenAI chat body the module serves (pure).

`system` becomes the first message; user turns keep their text and images (base64 sources as
data: URLs), their `tool_result` blocks become `tool` messages placed before the turn's other
content; assistant turns' `tool_use` blocks become `tool_calls`. `max_tokens` (required, as
Anthropic requires it), `stop_sequences`, `temperature`, `top_p`, `metadata.user_id`, `tools`,
`tool_choice` and `output_config.format` are mapped; `stream` asks for usage in the last chunk.

Dropped, because they only guide the provider and never change what is asked: `cache_control`
on blocks, `thinking` blocks of earlier assistant turns (the model's own reasoning), a
`thinking` setting of `{"type": "disabled"}`, and a `tool_result`'s `is_error` flag (OpenAI's
tool messages have none; the result's text still says what failed). Anything else this
translation cannot carry (`top_k`, extended thinking, server tools, documents, ...) is refused
with a 400 naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson

from fd2.serving.errors import BadRequest

_DROPPED_BLOCKS: Final = frozenset({"thinking", "redacted_thinking"})
_KNOWN: Final = frozenset(
    {
        "model",
        "max_tokens",
        "messages",
        "system",
        "stream",
        "stop_sequences",
        "temperature",
        "top_p",
        "metadata",
        "tools",
        "tool_choice",
        "output_config",
        "thinking",
    }
)


def openai_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """The OpenAI chat request body for a Messages API request; BadRequest for what it cannot
    carry (the message names the field)."""
    for key in body:
        if key not in _KNOWN:
            raise _refused(key)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("model: Field required", param="model")
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise BadRequest("max_tokens: a positive integer is required", param="max_tokens")
    thinking = body.get("thinking")
    if thinking is not None and (
        not isinstance(thinking, Mapping) or thinking.get("type") != "disabled"
    ):
        raise _refused("thinking")
    out: dict[str, Any] = {"model": model, "messages": _messages(body), "max_tokens": max_tokens}
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            out[key] = body[key]
    stops = body.get("stop_sequences")
    if isinstance(stops, list) and stops:
        out["stop"] = stops
    metadata = body.get("metadata")
    if isinstance(metadata, Mapping) and isinstance(metadata.get("user_id"), str):
        out["user"] = metadata["user_id"]
    _tools(body, out)
    _output(body.get("output_config"), out)
    if body.get("stream") is True:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return out


def _refused(field: str) -> BadRequest:
    return BadRequest(
        f"{field}: not supported by this gateway's Messages API translation", param=field
    )


def _messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    system = body.get("system")
    if isinstance(system, str) and system:
        out.append({"role": "system", "content": system})
    elif isinstance(system, list) and system:
        out.append({"role": "system", "content": _text_parts(system, "system")})
    elif system is not None and not isinstance(system, str | list):
        raise BadRequest("system: must be a string or a list of text blocks", param="system")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages: at least one message is required", param="messages")
    for message in messages:
        if not isinstance(message, Mapping):
            raise BadRequest("messages: each message must be an object", param="messages")
        role = message.get("role")
        content = message.get("content")
        if role == "user":
            out.extend(_user(content))
        elif role == "assistant":
            out.append(_assistant(content))
        else:
            raise BadRequest("messages: role must be 'user' or 'assistant'", param="messages.role")
    return out


def _blocks(content: object) -> list[Mapping[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list) or not all(isinstance(b, Mapping) for b in content):
        raise BadRequest(
            "messages: content must be a string or a list of blocks", param="messages.content"
        )
    return content


def _text_parts(blocks: list[Any], where: str) -> list[dict[str, Any]]:
    parts = []
    for block in blocks:
        if not isinstance(block, Mapping) or block.get("type") != "text":
            raise BadRequest(f"{where}: only text blocks are supported here", param=where)
        parts.append({"type": "text", "text": str(block.get("text", ""))})
    return parts


def _user(content: object) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    results: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for block in _blocks(content):
        kind = block.get("type")
        if kind == "text":
            parts.append({"type": "text", "text": str(block.get("text", ""))})
        elif kind == "image":
            parts.append({"type": "image_url", "image_url": {"url": _image_url(block)}})
        elif kind == "tool_result":
            results.append(_tool_message(block))
        else:
            raise _refused(f"messages.content.{kind}")
    # OpenAI wants a tool call's result right after the assistant turn that made it.
    if parts:
        results.append({"role": "user", "content": parts})
    return results


def _image_url(block: Mapping[str, Any]) -> str:
    source = block.get("source")
    kind = source.get("type") if isinstance(source, Mapping) else None
    if kind == "url" and isinstance(source, Mapping) and isinstance(source.get("url"), str):
        return str(source["url"])
    if kind == "base64" and isinstance(source, Mapping):
        media_type, data = source.get("media_type"), source.get("data")
        if isinstance(media_type, str) and isinstance(data, str):
            return f"data:{media_type};base64,{data}"
    raise BadRequest(
        "messages: an image needs a url or base64 source", param="messages.content.image"
    )


def _tool_message(block: Mapping[str, Any]) -> dict[str, Any]:
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str) or not call_id:
        raise BadRequest("tool_result: tool_use_id is required", param="tool_use_id")
    content = block.get("content", "")
    if isinstance(content, list):
        texts = []
        for part in _blocks(content):
            if part.get("type") != "text":  # OpenAI's tool messages carry text only
                raise _refused(f"tool_result.content.{part.get('type')}")
            texts.append(str(part.get("text", "")))
        text = "".join(texts)
    else:
        text = str(content)
    return {"role": "tool", "tool_call_id": call_id, "content": text}


def _assistant(content: object) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in _blocks(content):
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {
                        "name": block.get("name"),
                        "arguments": orjson.dumps(block.get("input", {})).decode(),
                    },
                }
            )
        elif kind not in _DROPPED_BLOCKS:
            raise _refused(f"messages.content.{kind}")
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    return message


def _tools(body: Mapping[str, Any], out: dict[str, Any]) -> None:
    tools = body.get("tools")
    if isinstance(tools, list) and tools:
        out["tools"] = [_tool(tool) for tool in tools]
    choice = body.get("tool_choice")
    if choice is None:
        return
    kind = choice.get("type") if isinstance(choice, Mapping) else None
    if kind == "auto":
        out["tool_choice"] = "auto"
    elif kind == "any":
        out["tool_choice"] = "required"
    elif kind == "none":
        out["tool_choice"] = "none"
    elif kind == "tool" and isinstance(choice, Mapping) and isinstance(choice.get("name"), str):
        out["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        raise BadRequest("tool_choice: unknown type", param="tool_choice")
    if isinstance(choice, Mapping) and choice.get("disable_parallel_tool_use") is True:
        out["parallel_tool_calls"] = False


def _tool(tool: object) -> dict[str, Any]:
    if not isinstance(tool, Mapping) or tool.get("type", "custom") != "custom":
        kind = tool.get("type") if isinstance(tool, Mapping) else None
        raise _refused(f"tools.{kind}")
    name = tool.get("name")
    schema = tool.get("input_schema")
    if not isinstance(name, str) or not isinstance(schema, Mapping):
        raise BadRequest("tools: each tool needs a name and an input_schema", param="tools")
    function: dict[str, Any] = {"name": name, "parameters": schema}
    if isinstance(tool.get("description"), str):
        function["description"] = tool["description"]
    if tool.get("strict") is True:
        function["strict"] = True
    return {"type": "function", "function": function}


def _output(config: object, out: dict[str, Any]) -> None:
    if config is None:
        return
    if not isinstance(config, Mapping) or set(config) - {"format"}:
        raise _refused("output_config")
    spec = config.get("format")
    if spec is None:
        return
    if not isinstance(spec, Mapping) or spec.get("type") != "json_schema":
        raise _refused("output_config.format")
    schema = spec.get("schema")
    if not isinstance(schema, Mapping):
        raise BadRequest("output_config.format: schema is required", param="output_config")
    out["response_format"] = {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema, "strict": True},
    }
