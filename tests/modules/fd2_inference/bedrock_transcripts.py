"""The Bedrock conformance transcripts (tests/conformance/transcripts/bedrock/), written here as
readable Python from Bedrock's API reference (Converse, ConverseStream, InvokeModel, the common
errors) and the event stream framing; the binary streams are stored base64 in the transcripts.
`test_bedrock_transcripts.py` checks that the stored files are exactly what this builds.

Regenerate after an edit (from tests/, the suite's import root):
`../.venv/bin/python -m modules.fd2_inference.bedrock_transcripts`.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from conformance import scenarios as sc

from .bedrock_frames import event

DIRECTORY = Path(__file__).resolve().parents[2] / "conformance" / "transcripts" / "bedrock"
MODEL = sc.MODEL
EMBEDDING_MODEL = sc.EMBEDDING_MODEL
SESSION_TOKEN = "conformance-bedrock-session-token"
PROVIDER = {
    "config": {
        "provider": "bedrock",
        "region": "us-east-1",
        "aws_access_key_id": "AKIDCONFORMANCE00001",
        "aws_secret_access_key": "conformance-bedrock-secret-key",
        "aws_session_token": SESSION_TOKEN,
    },
    "base_path": "",
}
REQUEST_ID = ["x-amzn-requestid", "7d3f2c1e-0b7a-4c55-9d0e-5a1f3e2b9c10"]
JSON_HEADERS = [["content-type", "application/json"], REQUEST_ID]
STREAM_HEADERS = [["content-type", "application/vnd.amazon.eventstream"], REQUEST_ID]
SPLIT = 5
"""Stream pieces of 5 bytes: cuts inside preludes, header names, header values and payloads."""


AUTHORIZATION = (
    "<re>AWS4-HMAC-SHA256 Credential=AKIDCONFORMANCE00001/20[0-9]{6}/us-east-1/bedrock/"
    "aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, "
    "Signature=[0-9a-f]{64}"
)
"""SigV4's date and signature change with the clock: the structure is compared (key id, scope,
signed headers); the signature itself is recomputed at a fixed clock in test_bedrock_signing.py."""


def _signed(accept: str) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "accept": accept,
        "x-amz-date": "<re>20[0-9]{6}T[0-9]{6}Z",
        "x-amz-security-token": SESSION_TOKEN,
        "authorization": AUTHORIZATION,
    }


def signed_request(
    body: dict[str, Any], *, stream: bool, action: str = "", model: str = MODEL
) -> dict[str, Any]:
    action = action or ("converse-stream" if stream else "converse")
    accept = "application/vnd.amazon.eventstream" if stream else "application/json"
    return {
        "method": "POST",
        "path": f"/model/{model}/{action}",
        "headers": _signed(accept),
        "json": body,
    }


def conversation(**extra: Any) -> dict[str, Any]:
    return {
        "system": [{"text": sc.SYSTEM}],
        "messages": [{"role": "user", "content": [{"text": sc.QUESTION}]}],
        "inferenceConfig": {"maxTokens": sc.MAX_TOKENS},
        **extra,
    }


WEATHER_SPEC = {
    "toolSpec": {
        "name": "get_weather",
        "description": "Current weather of a city.",
        "inputSchema": {"json": sc.WEATHER_TOOL["function"]["parameters"]},
    }
}


def _weather_request(question: str) -> dict[str, Any]:
    return {
        "messages": [{"role": "user", "content": [{"text": question}]}],
        "inferenceConfig": {"maxTokens": sc.MAX_TOKENS},
        "toolConfig": {"tools": [WEATHER_SPEC], "toolChoice": {"auto": {}}},
    }


def _answer(content: list[dict[str, Any]], stop: str, usage: dict[str, int]) -> dict[str, Any]:
    return {
        "status": 200,
        "headers": JSON_HEADERS,
        "json": {
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": stop,
            "usage": usage,
            "metrics": {"latencyMs": 412},
        },
    }


USAGE = {"inputTokens": 14, "outputTokens": 8, "totalTokens": 22}


def _stream(frames: list[bytes], *, cut: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "status": 200,
        "headers": STREAM_HEADERS,
        "body_b64": base64.b64encode(b"".join(frames)).decode(),
        "split_every": SPLIT,
    }
    if cut:
        response["cut"] = True
    return response


def _text_frames(pieces: list[str]) -> list[bytes]:
    # Bedrock pads events with a `p` member of varying length (it hides token sizes).
    frames = [event("messageStart", {"p": "abcdefghij", "role": "assistant"})]
    frames += [
        event(
            "contentBlockDelta",
            {"contentBlockIndex": 0, "delta": {"text": piece}, "p": "abcdefghijklmnopqrs"[: 3 + i]},
        )
        for i, piece in enumerate(pieces)
    ]
    return frames


def _tool_frames(calls: list[tuple[str, str]], first_block: int) -> list[bytes]:
    frames = []
    for offset, (tool_id, city) in enumerate(calls):
        block = first_block + offset
        frames.append(
            event(
                "contentBlockStart",
                {
                    "contentBlockIndex": block,
                    "p": "abcd",
                    "start": {"toolUse": {"name": "get_weather", "toolUseId": tool_id}},
                },
            )
        )
        frames.extend(
            event(
                "contentBlockDelta",
                {"contentBlockIndex": block, "delta": {"toolUse": {"input": piece}}, "p": "ab"},
            )
            for piece in ['{"loc', 'ation": "', city, '"}']
        )
        frames.append(event("contentBlockStop", {"contentBlockIndex": block, "p": "abcdefg"}))
    return frames


def _end(stop: str, usage: dict[str, int]) -> list[bytes]:
    return [
        event("messageStop", {"p": "abcdefghijklm", "stopReason": stop}),
        event("metadata", {"metrics": {"latencyMs": 389}, "p": "abc", "usage": usage}),
    ]


def _error(status: int, kind: str | None, message: str, *extra: list[str]) -> dict[str, Any]:
    headers = [["content-type", "application/json"], REQUEST_ID, *extra]
    if kind is not None:
        headers.append(
            ["x-amzn-errortype", f"{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"]
        )
    return {"status": status, "headers": headers, "json": {"message": message}}


def build() -> dict[str, dict[str, Any]]:
    plain = signed_request(conversation(), stream=False)
    streamed = signed_request(conversation(), stream=True)
    text_pieces = ["The", " capital of", " France is", " Paris", "."]
    cut_frames = _text_frames(["The", " capital"])
    half = event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": " of France"}})
    weather = "What is the weather in Paris?"
    both = "What is the weather in Paris and in Tokyo?"
    tool_call = {
        "toolUse": {
            "toolUseId": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q",
            "name": "get_weather",
            "input": {"location": "Paris"},
        }
    }
    transcripts: dict[str, dict[str, Any]] = {
        "_provider": PROVIDER,
        "plain": {"request": plain, "response": _answer([{"text": sc.ANSWER}], "end_turn", USAGE)},
        "stream": {
            "request": streamed,
            "response": _stream(
                [
                    *_text_frames(text_pieces),
                    event("contentBlockStop", {"contentBlockIndex": 0, "p": "abcdef"}),
                    *_end("end_turn", USAGE),
                ]
            ),
        },
        "tool_call": {
            "request": signed_request(_weather_request(weather), stream=False),
            "response": _answer(
                [{"text": "I'll check the weather in Paris."}, tool_call],
                "tool_use",
                {"inputTokens": 380, "outputTokens": 52, "totalTokens": 432},
            ),
        },
        "stream_tool_call": {
            "request": signed_request(_weather_request(weather), stream=True),
            "response": _stream(
                [
                    event("messageStart", {"p": "abcdefghij", "role": "assistant"}),
                    *_tool_frames([("tooluse_Wc7bDkX1QmuC0pVtB3nN2g", "Paris")], 0),
                    *_end("tool_use", {"inputTokens": 380, "outputTokens": 52, "totalTokens": 432}),
                ]
            ),
        },
        "parallel_tool_calls": {
            "request": signed_request(_weather_request(both), stream=True),
            "response": _stream(
                [
                    *_text_frames(["Checking both cities."]),
                    event("contentBlockStop", {"contentBlockIndex": 0, "p": "abcdef"}),
                    *_tool_frames(
                        [
                            ("tooluse_P4r1sAaaaaaaaaaaaaaaaa", "Paris"),
                            ("tooluse_T0ky0Bbbbbbbbbbbbbbbbb", "Tokyo"),
                        ],
                        1,
                    ),
                    *_end("tool_use", {"inputTokens": 391, "outputTokens": 97, "totalTokens": 488}),
                ]
            ),
        },
        "json_schema": {
            "request": signed_request(
                {
                    "messages": [{"role": "user", "content": [{"text": sc.QUESTION}]}],
                    "inferenceConfig": {"maxTokens": sc.MAX_TOKENS},
                    "toolConfig": {
                        "tools": [
                            {
                                "toolSpec": {
                                    "name": "answer_as_capital",
                                    "description": "The answer, given as this tool's input.",
                                    "inputSchema": {"json": sc.CAPITAL_SCHEMA["schema"]},
                                }
                            }
                        ],
                        "toolChoice": {"tool": {"name": "answer_as_capital"}},
                    },
                },
                stream=False,
            ),
            "response": _answer(
                [
                    {
                        "toolUse": {
                            "toolUseId": "tooluse_Jh3sQ0sAaaaaaaaaaaaaaa",
                            "name": "answer_as_capital",
                            "input": {"country": "France", "capital": "Paris"},
                        }
                    }
                ],
                "tool_use",
                {"inputTokens": 402, "outputTokens": 40, "totalTokens": 442},
            ),
        },
        "vision": {
            "request": signed_request(
                {
                    "messages": [
                        {
                            "role": "user",
                            "content": [
                                {"text": "What is in this image?"},
                                {"image": {"format": "png", "source": {"bytes": sc.RED_PIXEL_PNG}}},
                            ],
                        }
                    ],
                    "inferenceConfig": {"maxTokens": sc.MAX_TOKENS},
                },
                stream=False,
            ),
            "response": _answer(
                [{"text": sc.VISION_ANSWER}],
                "end_turn",
                {"inputTokens": 21, "outputTokens": 6, "totalTokens": 27},
            ),
        },
        "usage": {
            "request": plain,
            "response": _answer(
                [{"text": sc.ANSWER}],
                "end_turn",
                {
                    "inputTokens": sc.USAGE["prompt_tokens"] - sc.USAGE["cached_tokens"],
                    "cacheReadInputTokens": sc.USAGE["cached_tokens"],
                    "cacheWriteInputTokens": 0,
                    "outputTokens": sc.USAGE["completion_tokens"],
                    "totalTokens": sc.USAGE["prompt_tokens"] + sc.USAGE["completion_tokens"],
                },
            ),
        },
        "stream_cut": {
            "request": signed_request(conversation(), stream=True),
            # Two deltas, then 23 bytes of the next message (inside its headers), then the
            # connection drops.
            "response": _stream([*cut_frames, half[:23]], cut=True),
        },
        "error_400": {
            "request": plain,
            "response": _error(
                400,
                "ValidationException",
                "The provided request is not valid: maxTokens must be at most 8192.",
            ),
        },
        "error_401": {
            "request": plain,
            "response": _error(
                403,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            ),
        },
        "error_403": {
            "request": plain,
            "response": _error(
                403,
                "AccessDeniedException",
                "You don't have access to the model with the specified model ID.",
            ),
        },
        "error_404": {
            "request": plain,
            "response": _error(
                404,
                "ResourceNotFoundException",
                "Could not resolve the foundation model from the provided model identifier.",
            ),
        },
        "error_413": {"request": plain, "response": _error(413, None, "Request Entity Too Large")},
        # Titan embeds one text per call: one InvokeModel call per input, answered as one list.
        "embeddings": {
            "exchanges": [
                {
                    "request": signed_request(
                        {"inputText": text}, stream=False, action="invoke", model=EMBEDDING_MODEL
                    ),
                    "response": {
                        "status": 200,
                        "headers": JSON_HEADERS,
                        "json": {
                            "embedding": list(vector),
                            "inputTextTokenCount": sc.EMBEDDING_TOKENS // 2,
                        },
                    },
                }
                for text, vector in zip(("hello", "world"), sc.EMBEDDINGS, strict=True)
            ]
        },
        "error_429": {
            "request": plain,
            "response": _error(
                429,
                "ThrottlingException",
                "Too many requests, please wait before trying again.",
                ["retry-after", "7"],
            ),
        },
        "error_overloaded": {
            "request": plain,
            "response": _error(
                503,
                "ServiceUnavailableException",
                "Bedrock is unable to process your request.",
            ),
        },
        "error_5xx": {
            "request": plain,
            "response": _error(
                500,
                "InternalServerException",
                "The server encountered an internal error while processing the request.",
            ),
        },
    }
    return transcripts


def rendered() -> dict[str, str]:
    """File name -> file text."""
    return {f"{name}.json": json.dumps(value, indent=2) + "\n" for name, value in build().items()}


def main() -> None:
    DIRECTORY.mkdir(parents=True, exist_ok=True)
    for name, text in rendered().items():
        (DIRECTORY / name).write_text(text)


if __name__ == "__main__":
    main()
