"""What running a stored prompt costs in the real harness (issue 14, point 7): `/v1/responses`
with `prompt: {id, variables}` against the same request written out inline (the messages the
prompt renders to, as `instructions` + `input`), on one fd2 module, back to back in each round.

The difference is the prompt's own work per request: looking the version up, validating the
variables against its input schema, rendering its compiled templates (kept per version). Both
requests go through the Responses API's translation to chat and the same stand-in; every answer
is checked as JSON by the load generator (`-expect any`) and must be a 200.

    make bench-prompts                                     # or, with more rounds:
    .venv/bin/python bench/prompt_render.py --rounds 6 --quick

Budget (issue 14): at most 100 µs added p50 per request.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from procs import BENCH, BIN, Pinning, Processes, build_tools, run_json, tree
from targets import Target, start_fd2, start_standins
from translation import _Options, cpu_ns

BUDGET_US = 100.0
PROMPT_ID = "bench-review"
PROMPT = {
    "versions": [
        {
            "messages": [
                {"role": "system", "content": "You review {{ language }} code. Be {{ tone }}."},
                {"role": "user", "content": "Review this:\n{{ code }}"},
            ],
            "input_schema": {
                "type": "object",
                "properties": {
                    "language": {"type": "string", "default": "Python"},
                    "tone": {"type": "string", "enum": ["brief", "thorough"]},
                    "code": {"type": "string", "maxLength": 2000},
                },
                "required": ["code", "tone"],
            },
        }
    ],
    "labels": {"production": 1},
}
VARIABLES = {"code": "def f(x):\n    return x * 2\n", "tone": "brief"}
WITH_PROMPT = {"model": "gpt-4o-mini", "prompt": {"id": PROMPT_ID, "variables": VARIABLES}}
INLINE = {
    "model": "gpt-4o-mini",
    "instructions": "You review Python code. Be brief.",
    "input": "Review this:\n" + VARIABLES["code"],
}
CASES = (("closed c=1", 1), ("closed c=16", 16))


def with_prompt(manifest: dict[str, Any]) -> dict[str, Any]:
    """The bench manifest's `chat` module gets the prompt (where a Control Tower keeps it)."""
    modules = manifest.setdefault("metadata", {}).setdefault("fd2", {}).setdefault("modules", {})
    chat = modules.setdefault("chat", {}).setdefault("config", {})
    chat.setdefault("prompts", {})[PROMPT_ID] = PROMPT
    return manifest


def _measure(fd2: Target, body: dict[str, Any], concurrency: int, cfg: Any) -> dict[str, Any]:
    url = fd2.chat_url.replace("/chat/completions", "/responses")
    pids = tree(fd2.process.pid)
    before = cpu_ns(pids)
    argv = [str(BIN / "loadgen"), "-mode", "closed", "-url", url, "-body", json.dumps(body),
            "-expect", "any", "-c", str(concurrency), "-duration", f"{cfg.duration_s}s",
            "-warmup", f"{cfg.warmup_s}s"]  # fmt: skip
    result = run_json(argv, timeout=cfg.duration_s + cfg.warmup_s + 120)
    sent = int(result["sent_in_all"])
    used = cpu_ns(pids) - before
    result["cpu_us_per_request"] = used / 1000 / sent if sent and used else None
    return result


def measure(fd2: Target, cfg: Any, rounds: int) -> dict[str, Any]:
    """Per case, the prompt minus inline, per round, then median (min, max) over rounds."""
    rows = []
    for name, concurrency in CASES:
        added: dict[str, list[float]] = {"p50_us": [], "cpu_us": []}
        inline_p50: list[float] = []
        errors = 0
        for round_no in range(rounds):
            order = [("inline", INLINE), ("prompt", WITH_PROMPT)]
            if round_no % 2:
                order.reverse()
            results = {label: _measure(fd2, body, concurrency, cfg) for label, body in order}
            errors += sum(int(r["errors"]) for r in results.values())
            inline, prompt = results["inline"], results["prompt"]
            if inline["latency_ms"]["count"] and prompt["latency_ms"]["count"]:
                inline_p50.append(inline["latency_ms"]["p50"] * 1000)
                added["p50_us"].append(
                    (prompt["latency_ms"]["p50"] - inline["latency_ms"]["p50"]) * 1000
                )
            if inline["cpu_us_per_request"] and prompt["cpu_us_per_request"]:
                added["cpu_us"].append(prompt["cpu_us_per_request"] - inline["cpu_us_per_request"])
            print(
                f"round {round_no + 1} prompts {name}: inline p50 "
                f"{inline['latency_ms']['p50']:.3f} ms, prompt p50 "
                f"{prompt['latency_ms']['p50']:.3f} ms, errors {errors}",
                flush=True,
            )
        rows.append(
            {
                "scenario": name,
                "inline_p50_us": _spread(inline_p50),
                "added": {figure: _spread(values) for figure, values in added.items()},
                "errors": errors,
            }
        )
    return {"budget_us": BUDGET_US, "rows": rows}


def _spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def _cell(value: dict[str, float] | None) -> str:
    if value is None:
        return "-"
    return f"{value['median']:,.0f} ({value['min']:,.0f} to {value['max']:,.0f})"


def markdown(summary: dict[str, Any]) -> str:
    lines = [
        "## Prompt rendering: /v1/responses with a stored prompt vs the same request inline",
        "",
        "Same fd2 module, same stand-in, back to back each round; added = prompt minus inline "
        f"per round, then median (min to max). Budget (issue 14): {summary['budget_us']:g} µs "
        "added p50.",
        "",
        "| load | inline p50 µs | added p50 µs | added CPU µs/request | errors |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {row['scenario']} | {_cell(row['inline_p50_us'])} | "
        f"{_cell(row['added']['p50_us'])} | {_cell(row['added']['cpu_us'])} | {row['errors']} |"
        for row in summary["rows"]
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    import run  # the runner's settings (durations per mode)

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="bench-quick's durations")
    mode.add_argument("--smoke", action="store_true", help="seconds; exit 1 on any error")
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    args = parser.parse_args()
    cfg = run.settings_for(_Options(quick=args.quick, smoke=args.smoke, delay_ms=0))
    rounds = 1 if args.smoke else args.rounds
    build_tools()
    pin = Pinning()
    out = args.out / time.strftime("prompts-%Y%m%d-%H%M%S", time.gmtime())
    out.mkdir(parents=True, exist_ok=True)
    with Processes() as procs:
        standins = start_standins(procs, pin, cfg.shape, cfg.delay_ms, out)
        fd2 = start_fd2(procs, pin, standins, out, cfg.fd2_workers, manifest_hook=with_prompt)
        summary = measure(replace(fd2), cfg, rounds)
    text = markdown(summary)
    (out / "prompts.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "prompts.md").write_text(text)
    print(text)
    print(f"report: {out / 'prompts.md'}")
    failed = sum(row["errors"] for row in summary["rows"])
    if failed:
        sys.exit(f"prompt rendering bench: {failed} errors")


if __name__ == "__main__":
    main()
