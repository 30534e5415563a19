"""Server-sent events: the public, typed face of the native SSE framer and decoder.

Modules import from here, never from `fd2._native` directly, so the native boundary stays one
place that can change.
"""

from fd2._native import NativeError, SseDecoder, SseEventTooLarge, SseFramer, SseStateError

__all__ = ["NativeError", "SseDecoder", "SseEventTooLarge", "SseFramer", "SseStateError"]
