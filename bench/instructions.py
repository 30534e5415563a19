"""Instructions per request: fd2's own work on one request, counted by callgrind, repeatable on a
busy machine (instruction counts do not depend on what else the machine runs; time does).

    .venv/bin/python bench/instructions.py                    # fd2 (open, API key) and floor-lean
    .venv/bin/python bench/instructions.py --baseline ../old  # also another checkout's fd2
    .venv/bin/python bench/instructions.py --only fd2-stream,floor-lean-stream  # streams only
    make bench-instructions

Each target's ASGI app runs in this process's image under `valgrind --tool=callgrind`, driven by
a minimal in-process server (no Granian: its Rust threads and their hand-offs are what
`bench/run.py` measures) at 16 requests at a time against the Go stand-in over loopback, and
each answer is checked. A target runs twice, with `--light` and `--heavy` requests after the same
start-up and warm-up; the difference over the extra requests is the figure: the Python and
native work of one request, the upstream exchange's system calls included, start-up excluded.
Needs valgrind (Debian: valgrind) and a few minutes per target.

Streamed answers (`fd2-stream`: the open `stream` route, `"stream": true`; `floor-lean-stream`;
`fd2-base-stream` with `--baseline`) are counted the same way, 16 streams at a time, in a second
table: instructions per streamed answer of `_STREAM` chunks (the stand-in's first chunk at
`ttft`, then one every `gap`, spaced so that each chunk is its own read even under callgrind:
a chunk that arrived with the one before would make a stream look cheaper), and instructions per
extra chunk: the same number of streams with `_LONG_CHUNKS` chunks each against `_STREAM`'s,
start-up and warm-up alike, the difference over the extra chunks. Every streamed answer is checked:
status 200, each chunk in order, then `data: [DONE]`; how many reads were relayed per answer is
reported (chunks + 1 when none was merged).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final

from procs import BENCH, Pinning, Processes, build_tools
from targets import (
    BENCH_KEY,
    BENCH_PEPPER,
    StreamShape,
    bench_manifest,
    chat_body,
    start_standins,
    stream_body,
)

_CONCURRENCY = 16
_SETTLE_S = 4.0
"""After start-up and warm-up: timers start-up armed run before counting."""
_COLLECTED = re.compile(r"Collected : (\d+)")
_STREAM: Final = StreamShape(ttft_ms=20, chunks=4, gap_ms=20)
"""The streamed answer counted: 4 content chunks (then the stand-in's finishing chunk and
[DONE] in one write), 20 ms apart: far apart enough to stay separate reads under callgrind."""
_LONG_CHUNKS: Final = 20
"""The longer answer that gives the cost of a chunk: 16 chunks more than `_STREAM`'s."""
_WARM_STREAMS: Final = 8 * _CONCURRENCY
"""Answers of the warm-up (two rounds of 4 per driver): in the extra-chunk difference too."""
_RELAYED = [0, 0]
"""Streamed answers checked, and the body messages with bytes they took (reads relayed)."""

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
_lifespans: list[asyncio.Future[None]] = []


def _scope(path: str, body: bytes, key: bool) -> dict[str, Any]:
    headers = [
        (b"host", b"127.0.0.1"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if key:
        headers.append((b"authorization", b"Bearer " + BENCH_KEY.encode()))
    return {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 5555),
    }


class _Answer:
    """One request's `receive` (the whole body at once) and `send` (kept, to be checked)."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def receive(self, body: bytes) -> Callable[[], Awaitable[dict[str, Any]]]:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        return receive

    def receive_then_wait(self, body: bytes) -> Callable[[], Awaitable[dict[str, Any]]]:
        """As a server's `receive` is once the body has been read: a future that stays pending
        while the client stays (Granian's takes done callbacks alike: the disconnect watch of a
        stream is one callback on it). `receive` above answers at once every time, and a stream
        long enough to be watched would spin its watch on it."""
        given = False

        def receive() -> Awaitable[dict[str, Any]]:
            nonlocal given
            if given:
                return asyncio.get_running_loop().create_future()
            given = True
            waiting = asyncio.get_running_loop().create_future()
            waiting.set_result({"type": "http.request", "body": body, "more_body": False})
            return waiting

        return receive

    async def send(self, message: dict[str, Any]) -> None:
        self.messages.append(message)


async def _drive(app: App, path: str, requests: int, key: bool, chunks: int = 0) -> None:
    """`chunks`: 0 for whole answers, else streamed answers of that many content chunks."""
    body = (stream_body if chunks else chat_body)("gpt-4o-mini").encode()

    async def one_after_another() -> None:
        for _ in range(requests // _CONCURRENCY):
            answer = _Answer()
            receive = (answer.receive_then_wait if chunks else answer.receive)(body)
            await app(_scope(path, body, key), receive, answer.send)
            sent = answer.messages
            whole = b"".join(message.get("body", b"") for message in sent[1:])
            if chunks:
                _check_stream(sent, whole, chunks)
            elif sent[0].get("status") != 200 or b'"choices"' not in whole:
                raise SystemExit(f"a wrong answer: {sent!r:.300}")

    await asyncio.gather(*(one_after_another() for _ in range(_CONCURRENCY)))


def _check_stream(sent: list[dict[str, Any]], whole: bytes, chunks: int) -> None:
    """Status 200, every content chunk in order, [DONE] last, the response ended."""
    at = 0
    for index in range(chunks):
        at = whole.find(b'"content":"t%d "' % index, at)
        if at < 0:
            break
    if (
        sent[0].get("status") != 200
        or at < 0
        or not whole.endswith(b"data: [DONE]\n\n")
        or sent[-1].get("more_body", False)
    ):
        raise SystemExit(f"a wrong streamed answer: {sent!r:.600}")
    _RELAYED[0] += 1
    _RELAYED[1] += sum(1 for message in sent[1:] if message.get("body"))


async def _started(app: App) -> None:
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    _lifespans.append(asyncio.ensure_future(app({"type": "lifespan"}, inbox.get, outbox.put)))
    message = await outbox.get()
    if message["type"] != "lifespan.startup.complete":
        raise SystemExit(f"the app did not start: {message}")


async def _settled() -> None:
    """Waits for the work start-up left running in threads: the tokenizer's warm-up (~0.2 s,
    ~50x longer under callgrind) would otherwise end inside one run and not the other, and its
    ~80M instructions be counted as the requests'."""
    if "fd2_inference.metering" in sys.modules:
        from fd2_inference.metering import _warming

        await asyncio.gather(*_warming)


async def _child(
    target: str, requests: int, chat_port: int, stream_port: int, chunks: int, report: str
) -> None:
    """Runs under callgrind: start the target, warm it up, settle, then serve `requests`
    (streamed answers of `chunks` chunks when `chunks` is not 0; how many reads each took is
    written to `report`)."""
    key = target == "fd2-key"
    if target.startswith("fd2"):
        manifests = Path(tempfile.mkdtemp())
        (manifests / "bench.json").write_text(json.dumps(bench_manifest(chat_port, stream_port)))
        os.environ.update({"BENCH_UPSTREAM_KEY": "bench-key", "BENCH_PEPPER": BENCH_PEPPER})
        from fd2.config import Settings
        from fd2.serving.app import Fd2App

        app: App = Fd2App(
            Settings(
                manifests=str(manifests),
                log_level="warning",
                api_key_pepper_ref="env:BENCH_PEPPER",
            )
        )
        route = "stream" if chunks else "chat_key" if key else "chat"
        path = f"/bench/{route}/v1/chat/completions"
    else:
        os.environ["FLOOR_CHAT"] = f"http://127.0.0.1:{chat_port}"
        os.environ["FLOOR_STREAM"] = f"http://127.0.0.1:{stream_port}"
        sys.path.insert(0, str(BENCH / "anchors"))
        import floor_lean

        app = floor_lean.app
        path = f"/{'stream' if chunks else 'chat'}/v1/chat/completions"
    await _started(app)
    await _settled()
    await _drive(app, path, 4 * _CONCURRENCY, key, chunks)
    await asyncio.sleep(_SETTLE_S)
    await _drive(app, path, 4 * _CONCURRENCY, key, chunks)
    await _drive(app, path, requests, key, chunks)
    if report:
        _write(report, _RELAYED)  # counted, the same in every run
    os._exit(0)  # no shutdown work counted


def _write(path: str, relayed: list[int]) -> None:
    """Blocking, after the counted answers."""
    Path(path).write_text(json.dumps(relayed))


def _count(
    target: str, requests: int, ports: tuple[int, int], source: Path | None, chunks: int = 0
) -> tuple[int, list[int]]:
    """Instructions of one run, and [streamed answers, reads relayed] (streams only)."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    if source is not None:
        env["PYTHONPATH"] = str(source / "python")
    with tempfile.TemporaryDirectory() as scratch:
        report = f"{scratch}/relayed.json" if chunks else ""
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={scratch}/out",
             sys.executable, __file__, "--child", target, str(requests), *map(str, ports),
             str(chunks), report],
            env=env, capture_output=True, text=True, timeout=1800, check=False,
        )  # fmt: skip
        relayed = json.loads(Path(report).read_text()) if report and out.returncode == 0 else []
    found = _COLLECTED.search(out.stderr)
    if out.returncode != 0 or found is None:
        raise SystemExit(f"{target}: callgrind run failed:\n{out.stderr[-2000:]}")
    return int(found.group(1)), relayed


def _streams(
    targets: list[tuple[str, str, Path | None]],
    light: int,
    heavy: int,
    chat_port: int,
    ports: tuple[int, int],
    rounds: int = 1,
) -> None:
    """The streamed targets' table: per answer (heavy minus light over the extra answers,
    `_STREAM`'s shape) and per extra chunk (light runs of both shapes: the difference over
    their chunks, the warm-up's included). With `rounds` > 1 every target is counted that many
    times, in alternating order, then the medians (min-max): the timers a loop runs (deadline
    sweeps, disconnect watches) tick by the clock, and under callgrind a loaded machine gives
    an answer more ticks, so the counts move by a few percent from run to run."""
    short, long = _STREAM.chunks, _LONG_CHUNKS
    extra_chunks = (light + _WARM_STREAMS) * (long - short)
    print(
        f"\n{'target':18} instructions per streamed answer ({short} chunks, {heavy - light} "
        f"answers), per extra chunk ({long} chunks against {short}, {extra_chunks} chunks), "
        "reads relayed per answer"
    )
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name, _, _ in targets}
    with ThreadPoolExecutor(max_workers=2) as pool:
        for round_ in range(rounds):
            for name, target, source in targets if round_ % 2 == 0 else targets[::-1]:
                runs = [
                    pool.submit(_count, target, light, (chat_port, ports[0]), source, short),
                    pool.submit(_count, target, heavy, (chat_port, ports[0]), source, short),
                    pool.submit(_count, target, light, (chat_port, ports[1]), source, long),
                ]
                (few, relayed), (many, _), (longer, _) = (run.result() for run in runs)
                per_answer = (many - few) / (heavy - light)
                per_chunk = (longer - few) / extra_chunks
                reads = relayed[1] / relayed[0]
                figures[name].append((per_answer, per_chunk))
                where = f"  (round {round_ + 1})" if rounds > 1 else ""
                print(
                    f"{name:18} {per_answer:12,.0f} {per_chunk:12,.0f} {reads:8.2f}{where}",
                    flush=True,
                )
    if rounds > 1:
        print(f"\n{'target':18} medians of {rounds} rounds (min-max): per answer, per extra chunk")
        for name, counted in figures.items():
            answers = sorted(answer for answer, _ in counted)
            chunks = sorted(chunk for _, chunk in counted)
            print(
                f"{name:18} {statistics.median(answers):12,.0f} "
                f"({answers[0]:,.0f}-{answers[-1]:,.0f}) {statistics.median(chunks):10,.0f} "
                f"({chunks[0]:,.0f}-{chunks[-1]:,.0f})",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--baseline", type=Path, help="another checkout, counted as fd2-base")
    parser.add_argument("--light", type=int, default=512, help="requests of the short run")
    parser.add_argument("--heavy", type=int, default=2512, help="requests of the long run")
    parser.add_argument(
        "--stream-light", type=int, default=256, help="streamed answers of the short run"
    )
    parser.add_argument(
        "--stream-heavy", type=int, default=1056, help="streamed answers of the long run"
    )
    parser.add_argument(
        "--stream-rounds", type=int, default=1, help="count each streamed target this many times"
    )
    parser.add_argument(
        "--only",
        help="these targets only, e.g. 'fd2,floor-lean' or 'fd2-stream,fd2-base-stream' "
        "(fd2-base and fd2-base-stream need --baseline)",
    )
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        target, requests, chat_port, stream_port, chunks, report = args.child
        import uvloop

        uvloop.run(
            _child(target, int(requests), int(chat_port), int(stream_port), int(chunks), report)
        )
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("needs valgrind (Debian: apt-get install valgrind)")
    build_tools()
    targets: list[tuple[str, str, Path | None]] = [
        ("fd2", "fd2", None),
        ("fd2-key", "fd2-key", None),
        ("floor-lean", "floor-lean", None),
    ]
    streamed: list[tuple[str, str, Path | None]] = [
        ("fd2-stream", "fd2", None),
        ("floor-lean-stream", "floor-lean", None),
    ]
    if args.baseline is not None:
        base = args.baseline.resolve()
        targets[2:2] = [("fd2-base", "fd2", base), ("fd2-base-key", "fd2-key", base)]
        streamed[1:1] = [("fd2-base-stream", "fd2", base)]
    if args.only:
        wanted = set(args.only.split(","))
        targets = [entry for entry in targets if entry[0] in wanted]
        streamed = [entry for entry in streamed if entry[0] in wanted]
    extra = args.heavy - args.light
    with Processes() as procs, tempfile.TemporaryDirectory() as logs:
        standins = start_standins(procs, Pinning(), _STREAM, 0, Path(logs))
        (Path(logs) / "long").mkdir()  # the longer answers' stand-ins (their chat one unused)
        longer = start_standins(
            procs, Pinning(), StreamShape(_STREAM.ttft_ms, _LONG_CHUNKS, _STREAM.gap_ms), 0,
            Path(logs) / "long",
        )  # fmt: skip
        ports = (standins.chat_port, standins.stream_port)
        if targets:
            print(f"{'target':14} instructions per request (callgrind, {extra} requests)")
        with ThreadPoolExecutor(max_workers=2) as pool:
            for name, target, source in targets:
                light = pool.submit(_count, target, args.light, ports, source)
                heavy = pool.submit(_count, target, args.heavy, ports, source)
                per_request = (heavy.result()[0] - light.result()[0]) / extra
                print(f"{name:14} {per_request:12,.0f}", flush=True)
        if streamed:
            _streams(
                streamed,
                args.stream_light,
                args.stream_heavy,
                standins.chat_port,
                (standins.stream_port, longer.stream_port),
                args.stream_rounds,
            )


if __name__ == "__main__":
    main()
