"""OpenAI chat messages as Gemini's `systemInstruction` and `contents`.

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
from fd2_inference.providers.gemini_schema import Unsupported

_DATA_URL: Final = re.compile(r"data:([\w.+-]+/[\w.+-]+);base64,(.*)", re.DOTALL)
# Gemini reads a file by URI only from its own Files API; it does not fetch arbitrary URLs.
FILES_API: Final = "https://generativelanguage.googleapis.com/"
_AUDIO: Final = {"wav": "audio/wav", "mp3": "audio/mp3"}

SKIP_SIGNATURE: Final = "skip_thought_signature_validator"
"""The value Google documents for a function call Gemini did not make (a conversation begun
with another model): Gemini 3 then does not refuse the call for lacking its signature."""


class Contents:
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
