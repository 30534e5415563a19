"""A bounded, mixed hostile load against a real fd2 (issue 19): fails on any lost or hung request.

Run: `make soak` (or `.venv/bin/python bench/soak.py --seconds 180`). Everything runs on
loopback and stops by itself: the OpenAI stand-in, a redis-server of its own, and `fd2 serve`
with two workers, Redis-shared rate limits and short timeouts. For the whole run:

- well-behaved clients send chat requests (plain and streamed) and model lists and check every
  answer: 200 with a complete body, a stream that ends with `[DONE]`;
- floods of idle and slowloris connections are opened and held;
- hostile clients send bodies that stall or never start (408 expected), malformed chunked bodies
  (400 expected), and requests they reset mid-body or mid-stream;
- upstreams misbehave (a raw-socket stand-in and the OpenAI stand-in's fault modes): a stream
  without chunked framing reset mid-answer, an HTML page sent as an event stream, a chunked stream
  broken mid-answer — each must end with an error event in a complete response — and errors that
  quote the upstream key, answered and in-stream, which must come back without it;
- a worker is killed with SIGKILL every so often (Granian respawns it);
- Redis is stopped (SIGSTOP) for a few seconds, then killed and restarted;
- at the end, fd2 gets SIGTERM with long streams running: each must end, complete, with an error
  event at `--shutdown-timeout`, and fd2 must exit.

A well-behaved request is *lost* when it fails for any reason other than being in flight on a
worker at the moment that worker was killed, and *hung* when it has no answer after its deadline.
A hostile request is hung when fd2 has not answered or closed it within its bound. Either fails
the run (exit 1); the summary says what happened.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
STANDIN = REPO / "tests" / "standins" / "openai_upstream.py"
RAW_STANDIN = REPO / "tests" / "standins" / "raw_upstream.py"
UPSTREAM_KEY = "soak-upstream-key-5f2c81d0"
SHUTDOWN_TIMEOUT_S = 3.0
DRAIN_STREAMS = 8
BODY_TIMEOUT_S = 3.0
HEADER_TIMEOUT_S = 5.0
GOOD_DEADLINE_S = 20.0
HOSTILE_BOUND_S = BODY_TIMEOUT_S + HEADER_TIMEOUT_S + 5.0
KILL_GRACE_S = 1.0
"""A request that ended within this long after a worker kill, having started before it, may have
been in flight on the killed worker."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def manifest(upstream: str, raw_upstream: str) -> dict[str, object]:
    def module(name: str, origin: str) -> dict[str, object]:
        return {
            "module_type": "inference_endpoint",
            "name": name,
            "config": {
                "endpoint_url": f"http://{origin}/v1/chat/completions",
                "api_key": "${environments.common.secrets.key}",
            },
        }

    return {
        "project_id": "soak",
        "environment": "development",
        "environments": {
            "common": {"secrets": {"key": "env:SOAK_UPSTREAM_KEY"}},
            "development": {"limits": {"requests_per_second": 1_000_000}},
        },
        "modules": [module("chat", upstream), module("raw", raw_upstream)],
        "metadata": {
            "fd2": {"modules": {name: {"auth": {"mode": "none"}} for name in ("chat", "raw")}}
        },
    }


def sse_events(body: bytes) -> list[bytes]:
    events = []
    for block in body.replace(b"\r\n", b"\n").split(b"\n\n"):
        data = [line[5:].strip() for line in block.split(b"\n") if line.startswith(b"data:")]
        if data:
            events.append(b"\n".join(data))
    return events


def error_code(event: bytes) -> str | None:
    """The `code` of an OpenAI error event, None when it is not one."""
    with contextlib.suppress(ValueError):
        value = json.loads(event)
        if isinstance(value, dict) and isinstance(value.get("error"), dict):
            return str(value["error"].get("code"))
    return None


@dataclass
class Tally:
    ok: int = 0
    lost_with_worker: int = 0
    lost: list[str] = field(default_factory=list)
    hung: list[str] = field(default_factory=list)
    hostile: dict[str, int] = field(default_factory=dict)
    kills: list[float] = field(default_factory=list)
    redis_events: list[str] = field(default_factory=list)

    def expected(self, kind: str) -> None:
        self.hostile[kind] = self.hostile.get(kind, 0) + 1

    def failed(self, what: str, began: float, ended: float) -> None:
        if any(began <= kill + KILL_GRACE_S and ended >= kill for kill in self.kills):
            self.lost_with_worker += 1
        else:
            self.lost.append(f"{time.strftime('%X')} {what}")


class Processes:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(
        self, name: str, argv: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO, start_new_session=True
        )
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGCONT)
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)


def wait_ready(url: str, proc: subprocess.Popen[bytes], what: str, deadline_s: float = 30) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited early (code {proc.returncode})")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise SystemExit(f"{what} not ready after {deadline_s} s")


def worker_pids(parent: int) -> list[int]:
    children: list[int] = []
    for task in Path(f"/proc/{parent}/task").iterdir():
        with contextlib.suppress(OSError):
            children += [int(pid) for pid in (task / "children").read_text().split()]
    return children


class Soak:
    def __init__(self, port: int, fd2: subprocess.Popen[bytes], redis: RedisControl, end: float):
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.fd2 = fd2
        self.redis = redis
        self.end = end
        self.tally = Tally()

    def running(self) -> bool:
        return time.monotonic() < self.end

    # --- well-behaved clients

    async def good_client(self, client: httpx.AsyncClient, n: int) -> None:
        kinds = ("chat", "stream", "models")
        i = n
        while self.running():
            kind = kinds[i % 3]
            i += 1
            began = time.monotonic()
            try:
                async with asyncio.timeout(GOOD_DEADLINE_S):
                    problem = await self._good_request(client, kind)
            except TimeoutError:
                self.tally.hung.append(f"{time.strftime('%X')} {kind}: no answer in time")
                continue
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}"
            if problem is None:
                self.tally.ok += 1
            else:
                self.tally.failed(f"{kind}: {problem}", began, time.monotonic())

    async def _good_request(self, client: httpx.AsyncClient, kind: str) -> str | None:
        url = self.base + "/soak/chat/v1"
        if kind == "models":
            answer = await client.get(url + "/models")
            return None if answer.status_code == 200 else f"status {answer.status_code}"
        body: dict[str, object] = {
            "model": "chunks-6-gap-20" if kind == "stream" else "gpt-4o-mini",
            "messages": [{"role": "user", "content": "soak"}],
        }
        if kind == "chat":
            answer = await client.post(url + "/chat/completions", json=body)
            if answer.status_code != 200:
                return f"status {answer.status_code}: {answer.text[:120]}"
            return None if answer.json().get("choices") else "no choices"
        body["stream"] = True
        async with client.stream("POST", url + "/chat/completions", json=body) as answer:
            if answer.status_code != 200:
                return f"stream status {answer.status_code}"
            text = b"".join([chunk async for chunk in answer.aiter_bytes()])
        return None if text.rstrip().endswith(b"data: [DONE]") else "stream without [DONE]"

    # --- hostile clients: each case knows what fd2 must answer, and how soon

    async def hostile_client(self) -> None:
        cases = (
            (self._never_starts, "408"),
            (self._stalls, "408"),
            (self._malformed_chunked, "400"),
            (self._reset_mid_body, "reset"),
            (self._reset_mid_stream, "reset"),
        )
        while self.running():
            case, kind = random.choice(cases)
            began = time.monotonic()
            try:
                async with asyncio.timeout(HOSTILE_BOUND_S):
                    problem = await case()
            except TimeoutError:
                self.tally.hung.append(f"{time.strftime('%X')} hostile {case.__name__}")
                continue
            except OSError as exc:
                problem = type(exc).__name__
            if problem:
                self.tally.failed(f"hostile {case.__name__}: {problem}", began, time.monotonic())
            else:
                self.tally.expected(kind)
            await asyncio.sleep(0.05)

    async def _exchange(self, head: bytes, body_parts: list[bytes], gap: float) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(head)
            for part in body_parts:
                await writer.drain()
                await asyncio.sleep(gap)
                writer.write(part)
            await writer.drain()
            return await reader.read(65536)
        finally:
            writer.close()

    @staticmethod
    def _head(extra: bytes) -> bytes:
        return (
            b"POST /soak/chat/v1/chat/completions HTTP/1.1\r\nhost: soak\r\n"
            b"content-type: application/json\r\nconnection: close\r\n" + extra + b"\r\n"
        )

    @staticmethod
    def _status(answer: bytes, *allowed: bytes) -> str | None:
        if not answer:
            return None  # closed: fine only where the caller says so
        line = answer.split(b"\r\n", 1)[0]
        return None if any(b" " + code + b" " in line + b" " for code in allowed) else repr(line)

    async def _never_starts(self) -> str | None:
        answer = await self._exchange(self._head(b"content-length: 100\r\n"), [], 0)
        return self._status(answer, b"408") if answer else "closed without an answer"

    async def _stalls(self) -> str | None:
        head = self._head(b"content-length: 100\r\n")
        answer = await self._exchange(head, [b'{"model": "gpt', b'-4o-mini"'], 0.5)
        return self._status(answer, b"408") if answer else "closed without an answer"

    async def _malformed_chunked(self) -> str | None:
        head = self._head(b"transfer-encoding: chunked\r\n")
        answer = await self._exchange(head, [b"zz\r\nabc\r\n0\r\n\r\n"], 0)
        return self._status(answer, b"400") if answer else "closed without an answer"

    async def _reset_mid_body(self) -> str | None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(self._head(b"content-length: 1000\r\n") + b'{"model": ')
        await writer.drain()
        await asyncio.sleep(0.1)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        writer.close()
        del reader
        return None

    async def _reset_mid_stream(self) -> str | None:
        body = json.dumps(
            {
                "model": "chunks-50-gap-50",
                "stream": True,
                "messages": [{"role": "user", "content": "x"}],
            }
        ).encode()
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(self._head(b"content-length: %d\r\n" % len(body)) + body)
        await writer.drain()
        first = await reader.read(4096)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        writer.close()
        return self._status(first, b"200") if first else None

    # --- floods of connections that send nothing, or a head one byte at a time

    async def flood(self, size: int) -> None:
        while self.running():
            writers: list[asyncio.StreamWriter] = []
            with contextlib.suppress(OSError):
                for i in range(size):
                    _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                    if i % 2:
                        writer.write(b"POST /soak/chat/v1/models HTTP/1.1\r\nhost: s\r\nx-a: ")
                    writers.append(writer)
            self.tally.expected(f"flood of {size}")
            for _ in range(int(HEADER_TIMEOUT_S) - 1):  # held while fd2 still owes them time
                if not self.running():
                    break
                for writer in writers[1::2]:
                    with contextlib.suppress(OSError):
                        writer.write(b"a")
                await asyncio.sleep(1)
            for writer in writers:
                writer.close()
            await asyncio.sleep(2)

    # --- upstreams that misbehave: fd2 must end each answer in a way the client can tell

    async def upstream_faults(self, client: httpx.AsyncClient) -> None:
        cases = (
            ("raw", "raw-reset", "upstream_stream_incomplete"),
            ("raw", "raw-garbage", "upstream_not_event_stream"),
            ("chat", "stream-break", "bad_gateway"),
            ("chat", "stream-error-key", "invalid_api_key"),
        )
        while self.running():
            began = time.monotonic()
            if random.random() < 0.2:
                case, problem = "error-key", await self._quoted_key(client)
            else:
                module, model, code = random.choice(cases)
                case = model
                try:
                    async with asyncio.timeout(GOOD_DEADLINE_S):
                        problem = await self._faulty_stream(client, module, model, code)
                except TimeoutError:
                    self.tally.hung.append(f"{time.strftime('%X')} upstream fault {model}")
                    continue
                except httpx.HTTPError as exc:  # a response cut short: no telling end
                    problem = type(exc).__name__
            if problem:
                self.tally.failed(f"upstream fault {case}: {problem}", began, time.monotonic())
            else:
                self.tally.expected(f"upstream {case}")
            await asyncio.sleep(0.05)

    async def _faulty_stream(
        self, client: httpx.AsyncClient, module: str, model: str, code: str
    ) -> str | None:
        body = {"model": model, "stream": True, "messages": [{"role": "user", "content": "x"}]}
        url = f"{self.base}/soak/{module}/v1/chat/completions"
        async with client.stream("POST", url, json=body) as answer:
            if answer.status_code != 200:
                return f"status {answer.status_code}"
            text = b"".join([chunk async for chunk in answer.aiter_bytes()])
        events = sse_events(text)
        if events and UPSTREAM_KEY.encode() in events[-1]:
            return "the upstream key came back"
        if not events or error_code(events[-1]) != code:
            return f"ended with {events[-1][:80]!r}" if events else "no event"
        return None

    async def _quoted_key(self, client: httpx.AsyncClient) -> str | None:
        body = {"model": "error-key", "messages": [{"role": "user", "content": "x"}]}
        try:
            answer = await client.post(self.base + "/soak/chat/v1/chat/completions", json=body)
        except httpx.HTTPError as exc:
            return type(exc).__name__
        if answer.status_code != 401 or b"***" not in answer.content:
            return f"status {answer.status_code}: {answer.text[:80]}"
        return "the upstream key came back" if UPSTREAM_KEY.encode() in answer.content else None

    # --- failures of the machinery around the requests

    async def kill_workers(self, every_s: float) -> None:
        # Granian takes two deaths of one worker within ~5.5 s for a crash loop: stay clear of it.
        await asyncio.sleep(every_s)
        while self.running():
            pids = worker_pids(self.fd2.pid)
            if pids:
                self.tally.kills.append(time.monotonic())
                with contextlib.suppress(ProcessLookupError):
                    os.kill(random.choice(pids), signal.SIGKILL)
            await asyncio.sleep(every_s)

    async def disturb_redis(self, every_s: float) -> None:
        await asyncio.sleep(every_s / 2)
        round_ = 0
        while self.running():
            round_ += 1
            if round_ % 2:
                self.redis.pause()
                self.tally.redis_events.append("stopped (SIGSTOP) 5 s")
                await asyncio.sleep(5)
                self.redis.resume()
            else:
                self.redis.kill()
                self.tally.redis_events.append("killed, restarted after 5 s")
                await asyncio.sleep(5)
                await asyncio.to_thread(self.redis.start)
            await asyncio.sleep(every_s)


class RedisControl:
    def __init__(self, processes: Processes, port: int) -> None:
        self.processes = processes
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        argv = ["timeout", "1800", binary, "--bind", "127.0.0.1", "--port", str(self.port)]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(self.processes.workdir)]
        self.proc = self.processes.start(f"redis-{time.monotonic_ns()}", argv)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.5) as s,
            ):
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.05)
        raise SystemExit("redis-server did not start")

    def _signal(self, signum: int) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signum)

    def pause(self) -> None:
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(5)


async def run(soak: Soak, clients: int, flood: int, kill_every: float, redis_every: float) -> None:
    limits = httpx.Limits(max_connections=clients + 2, max_keepalive_connections=clients + 2)
    async with httpx.AsyncClient(timeout=GOOD_DEADLINE_S, limits=limits) as client:
        await asyncio.gather(
            *(soak.good_client(client, n) for n in range(clients)),
            *(soak.hostile_client() for _ in range(4)),
            *(soak.upstream_faults(client) for _ in range(2)),
            soak.flood(flood),
            soak.kill_workers(kill_every),
            soak.disturb_redis(redis_every),
        )


async def drain(port: int, fd2: subprocess.Popen[bytes]) -> list[str]:
    """SIGTERM with long streams running: each must end complete, with an error event, around
    the shutdown timeout, and fd2 must exit. Returns what went wrong."""
    url = f"http://127.0.0.1:{port}/soak/chat/v1/chat/completions"
    body = {
        "model": "chunks-400-gap-50",
        "stream": True,
        "messages": [{"role": "user", "content": "x"}],
    }
    started = [asyncio.Event() for _ in range(DRAIN_STREAMS)]
    problems: list[str] = []

    async def one(client: httpx.AsyncClient, first: asyncio.Event) -> None:
        text = b""
        try:
            async with client.stream("POST", url, json=body) as answer:
                async for chunk in answer.aiter_bytes():
                    text += chunk
                    first.set()
        except httpx.HTTPError as exc:
            problems.append(f"drain: a stream was cut ({type(exc).__name__})")
            return
        finally:
            first.set()
        events = sse_events(text)
        if not events or error_code(events[-1]) != "gateway_shutting_down":
            problems.append(f"drain: a stream ended with {events[-1:]!r}")

    async with httpx.AsyncClient(timeout=SHUTDOWN_TIMEOUT_S + 10) as client:
        tasks = [asyncio.create_task(one(client, first)) for first in started]
        await asyncio.gather(*(first.wait() for first in started))
        signalled = time.monotonic()
        fd2.send_signal(signal.SIGTERM)
        await asyncio.gather(*tasks)
        took = time.monotonic() - signalled
    if took > SHUTDOWN_TIMEOUT_S + 3:
        problems.append(f"drain: the streams ended {took:.1f} s after SIGTERM")
    try:
        await asyncio.to_thread(fd2.wait, 10)
    except subprocess.TimeoutExpired:
        problems.append("drain: fd2 did not exit")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--flood", type=int, default=3000, help="connections held per flood")
    parser.add_argument("--kill-every", type=float, default=20)
    parser.add_argument("--redis-every", type=float, default=25)
    args = parser.parse_args()
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.flood + 4096)), hard))
    workdir = Path(tempfile.mkdtemp(prefix="fd2-soak-"))
    processes = Processes(workdir)
    try:
        standin_port, port, redis_port = free_port(), free_port(), free_port()
        standin = processes.start(
            "standin",
            [sys.executable, str(STANDIN), "--host", "127.0.0.1", "--port", str(standin_port)],
        )
        wait_ready(f"http://127.0.0.1:{standin_port}/_standin/stats", standin, "the stand-in")
        raw_port = free_port()
        raw = processes.start(
            "raw-standin", [sys.executable, str(RAW_STANDIN), "--port", str(raw_port)]
        )
        wait_ready(f"http://127.0.0.1:{raw_port}/health", raw, "the raw stand-in")
        redis = RedisControl(processes, redis_port)
        redis.start()
        manifests = workdir / "manifests"
        manifests.mkdir()
        upstreams = (f"127.0.0.1:{standin_port}", f"127.0.0.1:{raw_port}")
        (manifests / "soak.json").write_text(json.dumps(manifest(*upstreams)))
        env = {k: v for k, v in os.environ.items() if not k.startswith("FD2_")}
        env["SOAK_UPSTREAM_KEY"] = UPSTREAM_KEY
        fd2 = processes.start(
            "fd2",
            [
                str(Path(sys.executable).with_name("fd2")),
                "serve",
                "--port",
                str(port),
                "--manifests",
                str(manifests),
                "--workers",
                "2",
                "--redis-url",
                f"redis://127.0.0.1:{redis_port}/0",
                "--body-timeout",
                str(BODY_TIMEOUT_S),
                "--header-timeout",
                str(HEADER_TIMEOUT_S),
                "--shutdown-timeout",
                str(SHUTDOWN_TIMEOUT_S),
            ],
            env,
        )
        wait_ready(f"http://127.0.0.1:{port}/healthz", fd2, "fd2")
        soak = Soak(port, fd2, redis, time.monotonic() + args.seconds)
        print(
            f"soak: {args.seconds:.0f} s against fd2 on port {port} (logs in {workdir})", flush=True
        )
        asyncio.run(run(soak, args.clients, args.flood, args.kill_every, args.redis_every))
        redis.resume()
        alive = fd2.poll() is None
        healthy = (
            alive and httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        )
        drained = asyncio.run(drain(port, fd2)) if alive else ["drain: fd2 was not running"]
        report(soak.tally, alive and healthy, drained)
        if soak.tally.lost or soak.tally.hung or not (alive and healthy) or drained:
            raise SystemExit(1)
    finally:
        processes.stop_all()


def report(tally: Tally, healthy: bool, drained: list[str]) -> None:
    print(f"well-behaved requests answered correctly: {tally.ok}")
    print(f"lost while in flight on a killed worker (allowed): {tally.lost_with_worker}")
    print(
        f"worker kills: {len(tally.kills)}; Redis: {', '.join(tally.redis_events) or 'untouched'}"
    )
    print(
        "hostile cases answered as expected: "
        + ", ".join(f"{k} {v}" for k, v in sorted(tally.hostile.items()))
    )
    print(f"fd2 alive and /healthz 200 at the end: {healthy}")
    print(
        f"SIGTERM with {DRAIN_STREAMS} streams running: "
        + ("; ".join(drained) if drained else "each ended with an error event, fd2 exited")
    )
    print(f"LOST: {len(tally.lost)}")
    for line in tally.lost[:20]:
        print("  " + line)
    print(f"HUNG: {len(tally.hung)}")
    for line in tally.hung[:20]:
        print("  " + line)


if __name__ == "__main__":
    main()
