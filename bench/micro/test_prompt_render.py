"""What running a prompt by id adds to a request (issue 14.7: at most 100 µs p50).

A version's templates and input schema are compiled once (when the manifest is loaded, or when
the Redis store's copy is first used), so a request pays: the lookup of the prompt and version
(dicts), the input schema's validation (jsonschema-rs), defaults, and running the compiled
templates in the sandbox. Measured on a typical version (system + user message, three typed
variables, one with a default, a loop over a list) and on a long one (a 4 KB system prompt and
ten list items), each request rendered through `PromptResolver.render`, exactly what
`/v1/responses` with `prompt` and `/v1/analyze` call. Run with `make bench-micro`, or
`pytest bench/micro/test_prompt_render.py -s` for the printed figures (kept in docs/prompts.md).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import pytest

from fd2.prompts.resolve import PromptResolver, rendered

BUDGET_US = 100.0
RUNS = 5000

TYPICAL = {
    "versions": [
        {
            "messages": [
                {"role": "system", "content": "You review {{ language }} code for {{ team }}."},
                {
                    "role": "user",
                    "content": "Review this:\n{{ code }}\n"
                    "{% for rule in rules %}- {{ rule }}\n{% endfor %}",
                },
            ],
            "input_schema": {
                "type": "object",
                "properties": {
                    "language": {"type": "string", "default": "Python"},
                    "team": {"type": "string"},
                    "code": {"type": "string", "maxLength": 20000},
                    "rules": {"type": "array", "items": {"type": "string"}, "default": []},
                },
                "required": ["team", "code"],
            },
            "parameters": {"temperature": 0.2},
        }
    ],
    "labels": {"production": 1},
}
LONG = {
    "versions": [
        {
            "messages": [
                {"role": "system", "content": "Policy. " * 500 + "Team {{ team }}."},
                {"role": "user", "content": "{{ code }}{% for r in rules %}\n{{ r }}{% endfor %}"},
            ],
            "input_schema": TYPICAL["versions"][0]["input_schema"],  # type: ignore[index]
        }
    ]
}
REFERENCES: dict[str, dict[str, Any]] = {
    "typical": {
        "id": "review",
        "variables": {"team": "payments", "code": "def f(x):\n    return x * 2\n" * 5},
    },
    "long": {
        "id": "long",
        "variables": {
            "team": "payments",
            "code": "x = 1\n" * 100,
            "rules": [f"rule {i}: be precise" for i in range(10)],
        },
    },
}


def _resolver() -> PromptResolver:
    return PromptResolver.for_module("bench", {"prompts": {"review": TYPICAL, "long": LONG}}, None)


def _timings(resolver: PromptResolver, reference: dict[str, Any]) -> list[float]:
    async def run() -> list[float]:
        out = []
        for _ in range(RUNS):
            start = time.perf_counter_ns()
            await resolver.render(reference)
            out.append((time.perf_counter_ns() - start) / 1000)
        return out

    return asyncio.run(run())


@pytest.mark.parametrize("case", sorted(REFERENCES))
def test_render_benchmark(benchmark: Any, case: str) -> None:
    """The synchronous part (validate, defaults, templates) of a cached version's render."""
    reference = REFERENCES[case]
    prompt = asyncio.run(_resolver().find(reference["id"]))
    version = prompt.version(None)
    benchmark(rendered, version, reference["variables"])


def test_render_budget() -> None:
    resolver = _resolver()
    for case, reference in sorted(REFERENCES.items()):
        timings = sorted(_timings(resolver, reference))
        p50 = statistics.median(timings)
        p99 = timings[int(len(timings) * 0.99)]
        print(f"\nprompt render ({case}): p50 {p50:.1f} us, p99 {p99:.1f} us over {RUNS} requests")
        assert p50 <= BUDGET_US, f"{case}: p50 {p50:.1f} us over the {BUDGET_US} us budget"
