"""Micro-benchmark: the native SSE framer against the best pure-Python framing we know.

Run: `.venv/bin/python bench/micro_sse.py [--quick]`. Prints ns per upstream chunk for typical
OpenAI chat chunks: whole events per chunk (the common case) and events split across chunks.
"""

from __future__ import annotations

import argparse
import re
import statistics
import timeit

from fd2.sse import SseFramer

EVENT = (
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini",'
    b'"choices":[{"index":0,"delta":{"content":"hello"},"finish_reason":null}]}\n\n'
)
_BOUNDARY = re.compile(rb"\r\n\r\n|\n\n|\r\r|\r\n\r|\n\r\n|\r\n\n|\n\r")


class PythonFramer:
    """Pure Python, tuned: a fast path for chunks that end on an LF blank line (the common case),
    else the last boundary found with `rfind` (LF) or one regex scan (CR / CRLF streams)."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> bytes:
        if not self._buffer and chunk.endswith(b"\n\n"):
            return chunk
        data = self._buffer + chunk if self._buffer else chunk
        end = data.rfind(b"\n\n") + 2 if b"\r" not in data else _last_boundary(data)
        if end < 2:
            self._buffer = data
            return b""
        self._buffer = data[end:]
        return data[:end]


def _last_boundary(data: bytes) -> int:
    end = -1
    for match in _BOUNDARY.finditer(data):
        end = match.end()
    return end


def measure(make, chunks: list[bytes], repeat: int, number: int) -> float:
    def run() -> None:
        framer = make()
        for chunk in chunks:
            framer.feed(chunk)

    times = timeit.repeat(run, repeat=repeat, number=number)
    return statistics.median(times) / number / len(chunks) * 1e9


def check_same_output(chunks: list[bytes]) -> None:
    """Both framers must relay exactly the input (the figures mean nothing otherwise)."""
    native, python = SseFramer(), PythonFramer()
    relayed_native = b"".join(native.feed(chunk) for chunk in chunks) + native.finish()
    relayed_python = b"".join(python.feed(chunk) for chunk in chunks)
    expected = b"".join(chunks)
    if relayed_native != expected or relayed_python != expected:
        raise SystemExit("framers disagree with the input: the benchmark is broken")
    if native.events != expected.count(b"\n\n"):
        raise SystemExit(f"native framer counted {native.events} events")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few rounds only (CI smoke)")
    args = parser.parse_args()
    repeat, number = (3, 20) if args.quick else (7, 200)
    whole = [EVENT] * 64
    stream = EVENT * 64
    split = [stream[i : i + 97] for i in range(0, len(stream), 97)]
    for name, chunks in (("whole events per chunk", whole), ("events split every 97 bytes", split)):
        check_same_output(chunks)
        native = measure(SseFramer, chunks, repeat, number)
        python = measure(PythonFramer, chunks, repeat, number)
        print(
            f"{name:30s} native {native:8.0f} ns/chunk   python {python:8.0f} ns/chunk"
            f"   python/native {python / native:5.1f}x"
        )


if __name__ == "__main__":
    main()
