"""Gemini: JSON Schemas (structured output, tool parameters) as Gemini's `Schema`, refused
where it cannot express them, or sent as they are (`json_schema: native`)."""

from __future__ import annotations

from typing import Any

import pytest

from fd2.serving.errors import ConfigError
from fd2_inference.providers.base import ProviderSettings, UnsupportedParameter
from fd2_inference.providers.gemini import GeminiProvider

from .test_gemini_request import DROPPING, USER, WEATHER, sent


def test_json_object_and_json_schema() -> None:
    body = sent({"model": "g", "messages": [USER], "response_format": {"type": "json_object"}})
    assert body["generationConfig"] == {"responseMimeType": "application/json"}
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}, "maxItems": 3},
            "age": {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "null"}]},
            "kind": {"const": "person"},
        },
        "required": ["name"],
        "$defs": {"tag": {"type": "string", "maxLength": 10}},
    }
    body = sent(
        {
            "model": "g",
            "messages": [USER],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "p", "strict": True, "schema": schema},
            },
        }
    )
    assert body["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseSchema": {
            "type": "OBJECT",
            "properties": {
                "name": {"type": "STRING"},
                "tags": {
                    "type": "ARRAY",
                    "items": {"type": "STRING", "maxLength": 10},
                    "maxItems": 3,
                },
                "age": {"type": "INTEGER", "minimum": 0, "nullable": True},
                "kind": {"type": "STRING", "enum": ["person"], "format": "enum"},
            },
            "propertyOrdering": ["name", "tags", "age", "kind"],
            "required": ["name"],
        },
    }


@pytest.mark.parametrize(
    ("schema", "why"),
    [
        (
            {
                "type": "object",
                "properties": {"a": {"type": "string"}},
                "additionalProperties": True,
            },
            "additionalProperties",
        ),
        ({"type": "string", "format": "email"}, "format"),
        ({"type": "integer", "multipleOf": 2}, "multipleOf"),
        ({"type": "integer", "enum": [1, 2]}, "enum"),
        ({"type": ["string", "integer"]}, "type"),
        (
            {
                "$ref": "#/$defs/node",
                "$defs": {
                    "node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/node"}}}
                },
            },
            "recursive",
        ),
        ({"$ref": "https://example.com/schema"}, "reference"),
        ({"not": {"type": "string"}}, "'not'"),
    ],
)
def test_json_schema_gemini_cannot_express_is_refused(schema: dict[str, Any], why: str) -> None:
    body = {
        "model": "g",
        "messages": [USER],
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
    }
    with pytest.raises(UnsupportedParameter) as err:
        sent(body)
    assert err.value.param == "response_format.json_schema.schema"
    assert why in str(err.value)


def test_drop_policy_leaves_out_what_cannot_be_expressed() -> None:
    schema = {"type": "object", "properties": {"mail": {"type": "string", "format": "email"}}}
    body = sent(
        {
            "model": "g",
            "messages": [USER],
            "logit_bias": {"1": 2},
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": schema},
            },
        },
        provider=DROPPING,
    )
    assert "logit_bias" not in body
    assert body["generationConfig"]["responseSchema"]["properties"] == {"mail": {"type": "STRING"}}


def test_native_json_schema_sends_schemas_as_they_are() -> None:
    native = GeminiProvider(
        ProviderSettings(name="gemini", base_url="", options={"json_schema": "native"})
    )
    schema = {"type": "object", "properties": {"mail": {"type": "string", "format": "email"}}}
    body = sent(
        {
            "model": "g",
            "messages": [USER],
            "tools": [WEATHER],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": schema},
            },
        },
        provider=native,
    )
    assert body["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseJsonSchema": schema,
    }
    [declaration] = body["tools"][0]["functionDeclarations"]
    assert declaration["parametersJsonSchema"] == WEATHER["function"]["parameters"]  # type: ignore[index]
    assert "parameters" not in declaration
    with pytest.raises(ConfigError):
        GeminiProvider(ProviderSettings(name="gemini", base_url="", options={"json_schema": "x"}))
