"""An OpenAI chat request as a Bedrock Converse request body (pure).

Bedrock's Converse API: `messages` of `user`/`assistant` turns whose `content` is a list of blocks
(`text`, `image`, `toolUse`, `toolResult`), `system` blocks apart, `inferenceConfig`, and
`toolConfig` (`tools[].toolSpec`, `toolChoice`). Tool results are blocks of a user turn, so
OpenAI's `tool` messages join the user turn around them; consecutive turns of one role are merged
(Converse requires turns to alternate).

Structured output: Converse has no JSON mode, so `response_format` becomes one forced tool whose
input schema is the requested schema (`{"type": "object"}` for `json_object`); the model's call to
it is the answer, turned back into the message content by the answer and stream transforms. Its
name carries ANSWER_TOOL_PREFIX so they recognise it without the request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import orjson

from fd2_inference.providers.base import ParamPolicy, UnsupportedParameter

PROVIDER: Final = "bedrock"
ANSWER_TOOL_PREFIX: Final = "answer_as_"
"""Forced answer tools are named `answer_as_<schema name>`; a client tool may not use it."""

HANDLED: Final = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stop",
        "tools",
        "tool_choice",
        "response_format",
        "n",
        "stream",
        "stream_options",
        "parallel_tool_calls",
        # Attribution only: no effect on the answer, so leaving it out changes nothing.
        "user",
    }
)
IMAGE_FORMATS: Final = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}
_DATA_URL: Final = re.compile(r"data:([\w/+.-]+);base64,(.*)", re.DOTALL)
_TOOL_NAME: Final = re.compile(r"[^a-zA-Z0-9_-]")


class Policy:
    """The module's policy for a parameter Converse cannot honour, for one call: raise, or leave
    it out and name it in `dropped` (the module logs ProviderCall.dropped)."""

    __slots__ = ("dropped", "mode")

    def __init__(self, mode: ParamPolicy) -> None:
        self.mode = mode
        self.dropped: list[str] = []

    def unsupported(self, param: str, why: str) -> None:
        if self.mode == "refuse":
            raise UnsupportedParameter(param, PROVIDER, f": {why}")
        if param not in self.dropped:
            self.dropped.append(param)


def converse_body(body: Mapping[str, Any], policy: Policy) -> dict[str, Any]:
    """The Converse request body for OpenAI chat `body` (the model goes in the path). A body not
    in OpenAI's documented shape is refused (400) rather than half translated."""
    try:
        return _converse_body(body, policy)
    except UnsupportedParameter:
        raise
    except (TypeError, AttributeError, KeyError, ValueError):
        tools = body.get("tools")
        tools_ok = tools is None or (
            isinstance(tools, list) and all(isinstance(tool, dict) for tool in tools)
        )
        raise UnsupportedParameter(
            "messages" if tools_ok else "tools",
            PROVIDER,
            ": the request is not in the shape OpenAI documents",
        ) from None


def _converse_body(body: Mapping[str, Any], policy: Policy) -> dict[str, Any]:
    for key, value in body.items():
        if key not in HANDLED and value is not None:
            policy.unsupported(key, "Bedrock Converse has no such parameter")
    n = body.get("n")
    if n is not None and n != 1:
        raise UnsupportedParameter("n", PROVIDER, ": Converse answers one choice per request")
    if body.get("parallel_tool_calls") is False:
        policy.unsupported("parallel_tool_calls", "Converse cannot forbid parallel tool calls")
    system, messages = _messages(body.get("messages"), policy)
    out: dict[str, Any] = {"messages": messages}
    if system:
        out["system"] = system
    inference = _inference_config(body)
    if inference:
        out["inferenceConfig"] = inference
    tool_config = _tool_config(body, messages, policy)
    if tool_config is not None:
        out["toolConfig"] = tool_config
    return out


def _inference_config(body: Mapping[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None:
        config["maxTokens"] = max_tokens
    if body.get("temperature") is not None:
        config["temperature"] = body["temperature"]
    if body.get("top_p") is not None:
        config["topP"] = body["top_p"]
    stop = body.get("stop")
    if isinstance(stop, str):
        config["stopSequences"] = [stop]
    elif isinstance(stop, list) and stop:
        config["stopSequences"] = stop
    return config


# --- messages


def _text_of(content: Any, role: str) -> str:
    """A system/developer/tool message's content as one text (string, or text parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text":
                raise UnsupportedParameter(
                    "messages", PROVIDER, f": a {role} message can only hold text"
                )
            texts.append(str(part.get("text", "")))
        return "".join(texts)
    if content is None:
        return ""
    raise UnsupportedParameter("messages", PROVIDER, f": {role} content is neither text nor parts")


def _user_blocks(content: Any, policy: Policy) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}]
    if not isinstance(content, list):
        raise UnsupportedParameter("messages", PROVIDER, ": user content is neither text nor parts")
    blocks: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            blocks.append({"text": part.get("text", "")})
        elif kind == "image_url":
            image = _image_block(part.get("image_url"), policy)
            if image is not None:
                blocks.append(image)
        else:
            policy.unsupported("messages", f"content part type {kind!r} has no Converse block")
    return blocks


def _image_block(image_url: Any, policy: Policy) -> dict[str, Any] | None:
    url = image_url.get("url") if isinstance(image_url, dict) else image_url
    match = _DATA_URL.fullmatch(url) if isinstance(url, str) else None
    if match is None:
        # Converse takes image bytes (or S3 locations), not URLs; fetching a client's URL from
        # the gateway would make it a proxy to wherever the URL points.
        policy.unsupported("messages", "images must be data: URLs (base64), not links")
        return None
    image_format = IMAGE_FORMATS.get(match.group(1).lower())
    if image_format is None:
        policy.unsupported("messages", f"image type {match.group(1)!r} is not png/jpeg/gif/webp")
        return None
    # The JSON form of Converse's `bytes` is the base64 text itself.
    return {"image": {"format": image_format, "source": {"bytes": match.group(2).strip()}}}


def _tool_use_blocks(tool_calls: Any) -> list[dict[str, Any]]:
    blocks = []
    for call in tool_calls or ():
        function = call.get("function") or {}
        arguments = function.get("arguments") or "{}"
        try:
            tool_input = orjson.loads(arguments)
        except orjson.JSONDecodeError:
            raise UnsupportedParameter(
                "messages", PROVIDER, ": a tool call's arguments must be JSON"
            ) from None
        blocks.append(
            {
                "toolUse": {
                    "toolUseId": call.get("id", ""),
                    "name": function.get("name", ""),
                    "input": tool_input,
                }
            }
        )
    return blocks


def _messages(raw: Any, policy: Policy) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    if not isinstance(raw, list) or not raw:
        raise UnsupportedParameter("messages", PROVIDER, ": at least one message is required")
    system: list[dict[str, str]] = []
    turns: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})

    for message in raw:
        if not isinstance(message, dict):
            raise UnsupportedParameter("messages", PROVIDER, ": a message is not an object")
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            text = _text_of(content, role)
            if text:
                system.append({"text": text})
        elif role == "user":
            add("user", _user_blocks(content, policy))
        elif role == "assistant":
            blocks: list[dict[str, Any]] = []
            text = _text_of(content, role) if not isinstance(content, list) else _joined(content)
            if text:
                blocks.append({"text": text})
            blocks.extend(_tool_use_blocks(message.get("tool_calls")))
            add("assistant", blocks)
        elif role == "tool":
            result = {
                "toolResult": {
                    "toolUseId": message.get("tool_call_id", ""),
                    "content": [{"text": _text_of(content, role)}],
                }
            }
            add("user", [result])
        else:
            raise UnsupportedParameter("messages", PROVIDER, f": unknown role {role!r}")
    if not turns:
        raise UnsupportedParameter("messages", PROVIDER, ": no user or assistant content to send")
    return system, turns


def _joined(parts: list[Any]) -> str:
    """An assistant message's parts: text kept, refusals too (they are what it said)."""
    return "".join(
        str(part.get("text") or part.get("refusal") or "")
        for part in parts
        if isinstance(part, dict)
    )


# --- tools and structured output


def answer_tool_name(schema_name: str) -> str:
    return (ANSWER_TOOL_PREFIX + _TOOL_NAME.sub("_", schema_name))[:64]


def _tool_config(
    body: Mapping[str, Any], messages: list[dict[str, Any]], policy: Policy
) -> dict[str, Any] | None:
    tools = body.get("tools") or []
    choice = body.get("tool_choice")
    response_format = body.get("response_format")
    forced = _answer_tool(response_format)
    if forced is not None:
        if tools:
            raise UnsupportedParameter(
                "response_format",
                PROVIDER,
                ": structured output is a forced tool on Bedrock, which cannot be combined "
                "with tools",
            )
        return {"tools": [forced], "toolChoice": {"tool": {"name": forced["toolSpec"]["name"]}}}
    if not tools:
        return None
    specs = []
    for tool in tools:
        if not isinstance(tool, dict) or tool.get("type") != "function":
            policy.unsupported("tools", "only function tools have a Converse equivalent")
            continue
        function = tool.get("function") or {}
        name = function.get("name", "")
        if name.startswith(ANSWER_TOOL_PREFIX):
            raise UnsupportedParameter("tools", PROVIDER, f": {ANSWER_TOOL_PREFIX}* is reserved")
        spec: dict[str, Any] = {
            "name": name,
            "inputSchema": {"json": function.get("parameters") or {"type": "object"}},
        }
        if function.get("description"):
            spec["description"] = function["description"]
        specs.append({"toolSpec": spec})
    if choice == "none":
        if not any("toolUse" in b or "toolResult" in b for m in messages for b in m["content"]):
            return None  # no tools offered is what "none" means
        policy.unsupported("tool_choice", "'none' cannot be said to Converse once tools were used")
        choice = None
    config: dict[str, Any] = {"tools": specs}
    if choice == "auto":
        config["toolChoice"] = {"auto": {}}
    elif choice == "required":
        config["toolChoice"] = {"any": {}}
    elif isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        if not isinstance(name, str):
            raise UnsupportedParameter("tool_choice", PROVIDER, ": it names no function")
        config["toolChoice"] = {"tool": {"name": name}}
    return config


def _answer_tool(response_format: Any) -> dict[str, Any] | None:
    if not isinstance(response_format, dict):
        return None
    kind = response_format.get("type")
    if kind == "json_schema":
        spec = response_format.get("json_schema") or {}
        name = answer_tool_name(str(spec.get("name") or "response"))
        schema = spec.get("schema") or {"type": "object"}
        description = spec.get("description") or "The answer, given as this tool's input."
    elif kind == "json_object":
        name = answer_tool_name("json")
        schema = {"type": "object"}
        description = "The answer as a JSON object, given as this tool's input."
    else:
        return None  # "text": the default
    return {"toolSpec": {"name": name, "description": description, "inputSchema": {"json": schema}}}
