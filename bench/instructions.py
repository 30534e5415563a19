"""Instructions per request: fd2's own work on one request, counted by callgrind, repeatable on a
busy machine (instruction counts do not depend on what else the machine runs; time does).

    .venv/bin/python bench/instructions.py                    # fd2 (open, API key) and floor-lean
    .venv/bin/python bench/instructions.py --baseline ../old  # also another checkout's fd2
    make bench-instructions

Each target's ASGI app runs in this process's image under `valgrind --tool=callgrind`, driven by
a minimal in-process server (no Granian: its Rust threads and their hand-offs are what
`bench/run.py` measures) at 16 requests at a time against the Go stand-in over loopback, and
each answer is checked. A target runs twice, with `--light` and `--heavy` requests after the same
start-up and warm-up; the difference over the extra requests is the figure: the Python and
native work of one request, the upstream exchange's system calls included, start-up excluded.
Needs valgrind (Debian: valgrind) and a few minutes per target.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from procs import BENCH, Pinning, Processes, build_tools
from targets import BENCH_KEY, BENCH_PEPPER, StreamShape, bench_manifest, chat_body, start_standins

_CONCURRENCY = 16
_SETTLE_S = 4.0
"""After start-up and warm-up: timers start-up armed run before counting."""
_COLLECTED = re.compile(r"Collected : (\d+)")

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

    async def send(self, message: dict[str, Any]) -> None:
        self.messages.append(message)


async def _drive(app: App, path: str, requests: int, key: bool) -> None:
    body = chat_body("gpt-4o-mini").encode()

    async def one_after_another() -> None:
        for _ in range(requests // _CONCURRENCY):
            answer = _Answer()
            await app(_scope(path, body, key), answer.receive(body), answer.send)
            sent = answer.messages
            whole = b"".join(message.get("body", b"") for message in sent[1:])
            if sent[0].get("status") != 200 or b'"choices"' not in whole:
                raise SystemExit(f"a wrong answer: {sent!r:.300}")

    await asyncio.gather(*(one_after_another() for _ in range(_CONCURRENCY)))


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


async def _child(target: str, requests: int, chat_port: int, stream_port: int) -> None:
    """Runs under callgrind: start the target, warm it up, settle, then serve `requests`."""
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
        path = f"/bench/{'chat_key' if key else 'chat'}/v1/chat/completions"
    else:
        os.environ["FLOOR_CHAT"] = f"http://127.0.0.1:{chat_port}"
        os.environ["FLOOR_STREAM"] = f"http://127.0.0.1:{stream_port}"
        sys.path.insert(0, str(BENCH / "anchors"))
        import floor_lean

        app = floor_lean.app
        path = "/chat/v1/chat/completions"
    await _started(app)
    await _settled()
    await _drive(app, path, 4 * _CONCURRENCY, key)
    await asyncio.sleep(_SETTLE_S)
    await _drive(app, path, 4 * _CONCURRENCY, key)
    await _drive(app, path, requests, key)
    os._exit(0)  # no shutdown work counted


def _count(target: str, requests: int, ports: tuple[int, int], source: Path | None) -> int:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    if source is not None:
        env["PYTHONPATH"] = str(source / "python")
    with tempfile.TemporaryDirectory() as scratch:
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={scratch}/out",
             sys.executable, __file__, "--child", target, str(requests), *map(str, ports)],
            env=env, capture_output=True, text=True, timeout=1800, check=False,
        )  # fmt: skip
    found = _COLLECTED.search(out.stderr)
    if out.returncode != 0 or found is None:
        raise SystemExit(f"{target}: callgrind run failed:\n{out.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--baseline", type=Path, help="another checkout, counted as fd2-base")
    parser.add_argument("--light", type=int, default=512, help="requests of the short run")
    parser.add_argument("--heavy", type=int, default=2512, help="requests of the long run")
    parser.add_argument(
        "--only", help="these targets only, e.g. 'fd2,floor-lean' (fd2-base needs --baseline)"
    )
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        target, requests, chat_port, stream_port = args.child
        import uvloop

        uvloop.run(_child(target, int(requests), int(chat_port), int(stream_port)))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("needs valgrind (Debian: apt-get install valgrind)")
    build_tools()
    targets: list[tuple[str, str, Path | None]] = [
        ("fd2", "fd2", None),
        ("fd2-key", "fd2-key", None),
        ("floor-lean", "floor-lean", None),
    ]
    if args.baseline is not None:
        base = args.baseline.resolve()
        targets[2:2] = [("fd2-base", "fd2", base), ("fd2-base-key", "fd2-key", base)]
    if args.only:
        wanted = set(args.only.split(","))
        targets = [entry for entry in targets if entry[0] in wanted]
    extra = args.heavy - args.light
    with Processes() as procs, tempfile.TemporaryDirectory() as logs:
        standins = start_standins(procs, Pinning(), StreamShape(5, 4, 1), 0, Path(logs))
        ports = (standins.chat_port, standins.stream_port)
        print(f"{'target':14} instructions per request (callgrind, {extra} requests)")
        with ThreadPoolExecutor(max_workers=2) as pool:
            for name, target, source in targets:
                light = pool.submit(_count, target, args.light, ports, source)
                heavy = pool.submit(_count, target, args.heavy, ports, source)
                per_request = (heavy.result() - light.result()) / extra
                print(f"{name:14} {per_request:12,.0f}", flush=True)


if __name__ == "__main__":
    main()
