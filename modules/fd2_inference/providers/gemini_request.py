"""An OpenAI chat request as a Gemini `GenerateContentRequest` (Generative Language API v1beta):
the request's parameters, tools and structured output here, its messages in `gemini_contents`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from fd2.serving.errors import BadRequest
from fd2_inference.providers.gemini_contents import Contents
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
    system, contents = Contents(unsupported, sign_foreign_calls).build(messages)
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
