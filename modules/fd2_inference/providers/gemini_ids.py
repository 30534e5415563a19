"""Tool call ids for Gemini's function calls, which carry none OpenAI clients could echo.

Gemini 3 refuses a conversation whose earlier function calls come back without the
`thoughtSignature` it attached to them (a 400), and OpenAI's messages have no field for it. The
one value a client reliably sends back unchanged is the tool call id, so the signature rides
there: `call_<hex>` alone, or `call_<hex>__thought__<signature>`. Hex has no underscore, so the
marker cannot occur before it.
"""

from __future__ import annotations

import secrets
from typing import Final

_MARK: Final = "__thought__"


def new_call_id(signature: str | None = None) -> str:
    base = "call_" + secrets.token_hex(12)
    return base if not signature else base + _MARK + signature


def split_call_id(call_id: str) -> str | None:
    """The thought signature an id made by `new_call_id` carries, else None."""
    if not call_id.startswith("call_"):
        return None
    _, mark, signature = call_id.partition(_MARK)
    return signature if mark and signature else None


def new_completion_id(response_id: object = None) -> str:
    if isinstance(response_id, str) and response_id:
        return "chatcmpl-" + response_id
    return "chatcmpl-" + secrets.token_hex(12)
