"""An OpenAI chat request as a Gemini `GenerateContentRequest` (Generative Language API v1beta).

Roles: system and developer messages become `systemInstruction` (Gemini has one, so every
system message goes there, in order); assistant is `model`; tool results are `functionResponse`
parts of a `user` turn, named after the call they answer. Consecutive turns of one role are
merged, which is how Gemini expects the answers to parallel calls (one turn, several parts).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import orjson

from fd2.serving.errors import BadRequest
from fd2_inference.providers.gemini_ids import split_call_id
from fd2_inference.providers.gemini_schema import Unsupported, gemini_schema

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
        # An end-user id for OpenAI's abuse monitoring; Gemini has no such field and nothing
        # about the answer depends on it.
        "user",
    }
)
_COPIED: Final = (
    ("temperature", "temperature"),
    ("top_p", "topP"),
    ("presence_penalty", "presencePenalty"),
    ("frequency_penalty", "frequencyPenalty"),
    ("seed", "seed"),
)
_MODEL: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_DATA_URL: Final = re.compile(r"data:([\w.+-]+/[\w.+-]+);base64,(.*)", re.DOTALL)
# Gemini reads a file by URI only from its own Files API; it does not fetch arbitrary URLs.
FILES_API: Final = "https://generativelanguage.googleapis.com/"
_AUDIO: Final = {"wav": "audio/wav", "mp3": "audio/mp3"}


def model_path(body: Mapping[str, Any]) -> str:
    """The request's model as it goes in Gemini's URL path (`models/{model}`), checked so that
    it cannot change the path or query."""
    model = body.get("model")
    if isinstance(model, str):
        model = model.removeprefix("models/")
        if _MODEL.fullmatch(model):
            return model
    raise BadRequest(
        "'model' must name a Gemini model (letters, digits, '.', '_', '-').", param="model"
    )


SKIP_SIGNATURE: Final = "skip_thought_signature_validator"
"""The value Google documents for a function call Gemini did not make (a conversation begun
with another model): Gemini 3 then does not refuse the call for lacking its signature."""


def chat_request(
    body: Mapping[str, Any],
    unsupported: Unsupported,
    *,
    sign_foreign_calls: bool = False,
    native_schemas: bool = False,
) -> dict[str, Any]:
    """The `GenerateContentRequest` body for an OpenAI chat request. `sign_foreign_calls`: give
    the first unsigned function call of each model turn Google's bypass value. `native_schemas`:
    send JSON Schemas as they are (`responseJsonSchema`, `parametersJsonSchema`, Gemini 2.5 and
    later) instead of converted to the `Schema` subset every model takes."""
    for key, value in body.items():
        if key not in _HANDLED and value is not None:
            unsupported(key, "")
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise BadRequest("'messages' must be a list.", param="messages")
    system, contents = _Contents(unsupported, sign_foreign_calls).build(messages)
    out: dict[str, Any] = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": system}
    tools = body.get("tools")
    if tools:
        declarations = _declarations(tools, unsupported, native_schemas)
        out["tools"] = [{"functionDeclarations": declarations}]
    if body.get("tool_choice") is not None:
        out["toolConfig"] = {
            "functionCallingConfig": _tool_choice(body["tool_choice"], unsupported)
        }
    if body.get("parallel_tool_calls") is False:
        unsupported("parallel_tool_calls", ": Gemini cannot be told to call one function at a time")
    config = _generation_config(body, unsupported, native_schemas)
    if config:
        out["generationConfig"] = config
    return out


def _generation_config(
    body: Mapping[str, Any], unsupported: Unsupported, native_schemas: bool
) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for name, gemini in _COPIED:
        if body.get(name) is not None:
            config[gemini] = body[name]
    limit = body.get("max_completion_tokens")
    if limit is None:
        limit = body.get("max_tokens")
    if limit is not None:
        config["maxOutputTokens"] = limit
    stop = body.get("stop")
    if stop is not None:
        config["stopSequences"] = [stop] if isinstance(stop, str) else stop
    n = body.get("n")
    if n is not None and n != 1:
        config["candidateCount"] = n
    response_format = body.get("response_format")
    if response_format is not None:
        config.update(_response_format(response_format, unsupported, native_schemas))
    return config


def _response_format(value: Any, unsupported: Unsupported, native: bool) -> dict[str, Any]:
    kind = value.get("type") if isinstance(value, Mapping) else None
    if kind == "text":
        return {}
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    if kind == "json_schema":
        spec = value.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        if not isinstance(schema, Mapping):
            raise BadRequest(
                "'response_format.json_schema.schema' must be a JSON Schema object.",
                param="response_format.json_schema.schema",
            )
        if native:
            return {"responseMimeType": "application/json", "responseJsonSchema": schema}
        converted = gemini_schema(schema, "response_format.json_schema.schema", unsupported)
        return {"responseMimeType": "application/json", "responseSchema": converted}
    unsupported("response_format", f": the type {kind!r}")
    return {}


def _declarations(tools: Any, unsupported: Unsupported, native: bool) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise BadRequest("'tools' must be a list.", param="tools")
    declarations = []
    for i, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if not isinstance(function, Mapping) or tool.get("type") != "function":
            unsupported(f"tools[{i}]", ": Gemini takes function tools only")
            continue
        declaration: dict[str, Any] = {"name": function.get("name")}
        if function.get("description") is not None:
            declaration["description"] = function["description"]
        parameters = function.get("parameters")
        # Gemini refuses an OBJECT without properties; a function without arguments omits them.
        if isinstance(parameters, Mapping) and parameters.get("properties"):
            param = f"tools[{i}].function.parameters"
            if native:
                declaration["parametersJsonSchema"] = parameters
            else:
                declaration["parameters"] = gemini_schema(parameters, param, unsupported)
        declarations.append(declaration)
    return declarations


def _tool_choice(choice: Any, unsupported: Unsupported) -> dict[str, Any]:
    if choice == "auto":
        return {"mode": "AUTO"}
    if choice == "none":
        return {"mode": "NONE"}
    if choice == "required":
        return {"mode": "ANY"}
    if isinstance(choice, Mapping) and choice.get("type") == "function":
        function = choice.get("function")
        if isinstance(function, Mapping) and isinstance(function.get("name"), str):
            return {"mode": "ANY", "allowedFunctionNames": [function["name"]]}
    unsupported("tool_choice", "")
    return {"mode": "AUTO"}


class _Contents:
    """Builds `systemInstruction` parts and `contents` from OpenAI messages."""

    __slots__ = ("_calls", "_contents", "_sign_foreign", "_system", "_unsupported")

    def __init__(self, unsupported: Unsupported, sign_foreign: bool) -> None:
        self._unsupported = unsupported
        self._sign_foreign = sign_foreign
        self._system: list[dict[str, Any]] = []
        self._contents: list[dict[str, Any]] = []
        self._calls: dict[str, str] = {}  # tool call id -> function name, for tool results

    def build(self, messages: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        for i, message in enumerate(messages):
            if not isinstance(message, Mapping):
                raise BadRequest(f"'messages[{i}]' must be an object.", param=f"messages[{i}]")
            role = message.get("role")
            where = f"messages[{i}]"
            if role in ("system", "developer"):
                self._system.extend(self._parts(message.get("content"), where, text_only=True))
            elif role == "user":
                self._add("user", self._parts(message.get("content"), where, text_only=False))
            elif role == "assistant":
                self._add("model", self._assistant(message, where))
            elif role == "tool":
                self._add("user", [self._tool_result(message, where)])
            else:
                self._unsupported(f"{where}.role", f": the role {role!r}")
        return self._system, self._contents

    def _add(self, role: str, parts: list[dict[str, Any]]) -> None:
        if not parts:
            return
        if self._contents and self._contents[-1]["role"] == role:
            self._contents[-1]["parts"].extend(parts)
        else:
            self._contents.append({"role": role, "parts": parts})

    def _parts(self, content: Any, where: str, *, text_only: bool) -> list[dict[str, Any]]:
        if content is None:
            return []
        if isinstance(content, str):
            return [{"text": content}]
        if not isinstance(content, list):
            raise BadRequest(
                f"'{where}.content' must be a string or a list.", param=f"{where}.content"
            )
        parts: list[dict[str, Any]] = []
        for j, item in enumerate(content):
            kind = item.get("type") if isinstance(item, Mapping) else None
            at = f"{where}.content[{j}]"
            if kind in ("text", "refusal"):
                parts.append({"text": item.get(kind)})
            elif text_only:
                self._unsupported(at, f": Gemini takes only text here, not {kind!r}")
            elif kind == "image_url":
                parts.extend(self._image(item.get("image_url"), at))
            elif kind == "input_audio":
                parts.extend(self._audio(item.get("input_audio"), at))
            elif kind == "file":
                parts.extend(self._file(item.get("file"), at))
            else:
                self._unsupported(at, f": the content type {kind!r}")
        return parts

    def _image(self, image: Any, at: str) -> list[dict[str, Any]]:
        url = image.get("url") if isinstance(image, Mapping) else None
        if not isinstance(url, str):
            raise BadRequest(f"'{at}.image_url.url' must be a string.", param=f"{at}.image_url.url")
        if isinstance(image, Mapping) and image.get("detail") not in (None, "auto"):
            self._unsupported(f"{at}.image_url.detail", ": Gemini has no image detail setting")
        inline = _DATA_URL.fullmatch(url)
        if inline:
            return [{"inlineData": {"mimeType": inline.group(1), "data": inline.group(2)}}]
        if url.startswith(FILES_API):
            return [{"fileData": {"fileUri": url}}]
        self._unsupported(
            f"{at}.image_url.url",
            ": Gemini reads images by URL only from its Files API; send a base64 data URL",
        )
        return []

    def _audio(self, audio: Any, at: str) -> list[dict[str, Any]]:
        fmt = audio.get("format") if isinstance(audio, Mapping) else None
        data = audio.get("data") if isinstance(audio, Mapping) else None
        if fmt not in _AUDIO or not isinstance(data, str):
            self._unsupported(f"{at}.input_audio", f": the audio format {fmt!r}")
            return []
        return [{"inlineData": {"mimeType": _AUDIO[fmt], "data": data}}]

    def _file(self, file: Any, at: str) -> list[dict[str, Any]]:
        data = file.get("file_data") if isinstance(file, Mapping) else None
        inline = _DATA_URL.fullmatch(data) if isinstance(data, str) else None
        if inline is None:
            self._unsupported(f"{at}.file", ": Gemini takes files as base64 data URLs only")
            return []
        return [{"inlineData": {"mimeType": inline.group(1), "data": inline.group(2)}}]

    def _assistant(self, message: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
        parts = self._parts(message.get("content"), where, text_only=True)
        calls = message.get("tool_calls") or []
        if not isinstance(calls, list):
            raise BadRequest(f"'{where}.tool_calls' must be a list.", param=f"{where}.tool_calls")
        calls_made = [
            self._function_call(c, f"{where}.tool_calls[{j}]") for j, c in enumerate(calls)
        ]
        # Gemini 3 checks the signature of the first call of a turn only.
        if calls_made and self._sign_foreign and "thoughtSignature" not in calls_made[0]:
            calls_made[0]["thoughtSignature"] = SKIP_SIGNATURE
        parts.extend(calls_made)
        return parts

    def _function_call(self, call: Any, at: str) -> dict[str, Any]:
        function = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            raise BadRequest(f"'{at}.function.name' must be a string.", param=f"{at}.function")
        try:
            args = orjson.loads(function.get("arguments") or "{}")
        except orjson.JSONDecodeError:
            args = None
        if not isinstance(args, dict):
            raise BadRequest(
                f"'{at}.function.arguments' must be a JSON object.",
                param=f"{at}.function.arguments",
            )
        call_id = call.get("id")
        part: dict[str, Any] = {"functionCall": {"name": function["name"], "args": args}}
        if isinstance(call_id, str):
            self._calls[call_id] = function["name"]
            signature = split_call_id(call_id)
            if signature is not None:
                part["thoughtSignature"] = signature
        return part

    def _tool_result(self, message: Mapping[str, Any], where: str) -> dict[str, Any]:
        call_id = message.get("tool_call_id")
        name = self._calls.get(call_id) if isinstance(call_id, str) else None
        if name is None:
            raise BadRequest(
                f"'{where}.tool_call_id' names no tool call of an earlier assistant message.",
                param=f"{where}.tool_call_id",
            )
        content = message.get("content")
        if isinstance(content, list):
            text = "".join(item.get("text", "") for item in content if isinstance(item, Mapping))
        else:
            text = content if isinstance(content, str) else ""
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            value = None
        # Gemini wants an object; a result that is not one goes under "output", its documented key.
        response = value if isinstance(value, dict) else {"output": text}
        return {"functionResponse": {"name": name, "response": response}}
