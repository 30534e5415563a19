"""A pure-Python byte-pair encoder over OpenAI's ranks: the baseline for token counting.

Same algorithm as tiktoken: split with the encoding's regex (the `regex` package, for `\\p{..}`),
then, per piece not itself a token, merge the lowest-ranked adjacent pair until none is left.
"""

from __future__ import annotations

from typing import Any

import regex


class PythonBpe:
    def __init__(self, ranks: dict[bytes, int], pattern: str) -> None:
        self._ranks = ranks
        self._pattern: Any = regex.compile(pattern)

    def encode(self, text: str) -> list[int]:
        ranks = self._ranks
        out: list[int] = []
        for piece in self._pattern.findall(text):
            data = piece.encode()
            token = ranks.get(data)
            if token is not None:
                out.append(token)
            else:
                out.extend(self._merge(data))
        return out

    def _merge(self, data: bytes) -> list[int]:
        ranks = self._ranks
        parts = [data[i : i + 1] for i in range(len(data))]
        while len(parts) > 1:
            best = None
            best_at = -1
            for i in range(len(parts) - 1):
                rank = ranks.get(parts[i] + parts[i + 1])
                if rank is not None and (best is None or rank < best):
                    best, best_at = rank, i
            if best is None:
                break
            parts[best_at : best_at + 2] = [parts[best_at] + parts[best_at + 1]]
        return [ranks[part] for part in parts]
