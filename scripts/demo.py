"""`make demo` and `make run`: fd2 serving the demo project in front of an OpenAI-style upstream.

fd2 serves examples/demo, a link to examples/manifests/demo.json alone: the other manifests there
name Vault secrets and a JWT service a plain machine does not have. The upstream is a local
stand-in (tests/standins/openai_upstream.py) unless FD2_DEMO_UPSTREAM names a real provider (its key
from FD2_DEMO_API_KEY, else OPENAI_API_KEY). The stand-in has no model: its chat answer is an echo,
a description of the request it received from fd2.

`make demo` shows a chat and a streamed request, then keeps serving until Ctrl-C (FD2_DEMO_EXIT=1
stops after the requests); `make run` (`--serve`) only serves. fd2 listens on 127.0.0.1 and
FD2_DEMO_PORT (8080); a port already in use is an error, never someone else's server taken for fd2.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import httpx

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = "examples/demo"
STANDIN = "tests/standins/openai_upstream.py"
CHAT_PATH = "/demo/chat/v1/chat/completions"
STARTUP_S = 30.0
STOP_GRACE_S = 35.0  # fd2 drains for up to --shutdown-timeout (30 s)
_BOLD, _RED, _PLAIN = ("\033[1m", "\033[1;31m", "\033[0m") if sys.stdout.isatty() else ("", "", "")


def fail(message: str) -> NoReturn:
    sys.exit(f"{_RED}fd2 demo: {message}{_PLAIN}")


def demo_port() -> int:
    raw = os.environ.get("FD2_DEMO_PORT", "8080")
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        fail(f"FD2_DEMO_PORT={raw!r} is not a port number")
    return int(raw)


def ensure_free(port: int) -> None:
    """Refuses a port something listens on: its /healthz must never be taken for fd2's."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            fail(
                f"127.0.0.1:{port} is already in use ({exc.strerror}). Stop the program holding "
                f"it, or pick another port: FD2_DEMO_PORT={port + 1} make demo"
            )


def spare_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            fail(f"{what} exited with status {process.returncode} (its output is above)")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    fail(f"{what} did not answer {url} within {STARTUP_S:.0f} s")


def show(title: str, text: str = "") -> None:
    print(f"\n{_BOLD}== {title}{_PLAIN}" + (f"\n{text}" if text else ""), flush=True)


def describe_echo(answer: dict[str, Any], upstream_key: str) -> str:
    """The stand-in's echo, readable: what fd2 forwarded, with the upstream key not printed."""
    seen = json.loads(answer["choices"][0]["message"]["content"])
    authorization = seen.get("authorization") or "(none)"
    if upstream_key and upstream_key in authorization:
        authorization = authorization.replace(upstream_key, "<FD2_DEMO_API_KEY>")
    lines = [
        "  The stand-in has no model: its answer is an echo of the request fd2 sent it.",
        f"  model:          {seen.get('model')}  (the manifest's model_name; the client sent none)",
        f"  authorization:  {authorization}  (added by fd2 from the manifest's secret reference)",
        f"  x-request-id:   {seen.get('x_request_id')}",
        "  messages:",
    ]
    lines.extend(f"    {m.get('role')}: {m.get('content')}" for m in seen.get("messages") or [])
    usage = answer.get("usage") or {}
    lines.append(f"  usage:          {json.dumps(usage)}")
    return "\n".join(lines)


def show_requests(base: str, echo: bool, upstream_key: str) -> None:
    chat = httpx.post(
        base + CHAT_PATH,
        json={"messages": [{"role": "user", "content": "Say hello through fd2."}]},
        timeout=60,
    )
    title = (
        f"POST {CHAT_PATH} -> {chat.status_code} (x-request-id {chat.headers.get('x-request-id')})"
    )
    if chat.status_code == 200 and echo:
        show(title, describe_echo(chat.json(), upstream_key))
    else:
        show(title, chat.text)
    show(f"POST {CHAT_PATH} with stream=true (server-sent events as they arrive)")
    if echo:
        print("  (the stand-in streams numbered chunks; its first chunk also carries the echo)")
    with httpx.stream(
        "POST",
        base + CHAT_PATH,
        json={"stream": True, "messages": [{"role": "user", "content": "Count to five."}]},
        timeout=60,
    ) as stream:
        for line in stream.iter_lines():
            if line:
                print("  " + summarise_event(line), flush=True)


def summarise_event(line: str) -> str:
    """One SSE line as the part a reader cares about: the text delta, the finish, the usage."""
    if not line.startswith("data: {"):
        return line
    chunk = json.loads(line.removeprefix("data: "))
    parts = [f"data: {chunk.get('object')}"]
    for choice in chunk.get("choices") or []:
        delta = choice.get("delta") or {}
        if delta.get("content"):
            parts.append(f"content {delta['content']!r}")
        if choice.get("finish_reason"):
            parts.append(f"finish_reason {choice['finish_reason']}")
    if chunk.get("usage"):
        parts.append(f"usage {json.dumps(chunk['usage'])}")
    if "standin" in chunk:
        parts.append("(+ the stand-in's echo)")
    return ", ".join(parts)


def stop(children: list[subprocess.Popen[bytes]]) -> None:
    for child in reversed(children):
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            child.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--serve", action="store_true", help="serve only (make run)")
    serve_only = parser.parse_args().serve
    port = demo_port()
    ensure_free(port)
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ)
    # demo.json reads its upstream with ${FD2_DEMO_UPSTREAM}: an explicit opt-in (docs/security.md).
    env.setdefault("FD2_MANIFEST_ENV_ALLOW", "FD2_DEMO_UPSTREAM")
    children: list[subprocess.Popen[bytes]] = []
    # SIGTERM (a supervisor, `kill`) ends the demo like Ctrl-C does: children are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        echo = not env.get("FD2_DEMO_UPSTREAM")
        if echo:
            standin_port = spare_port()
            env["FD2_DEMO_UPSTREAM"] = f"http://127.0.0.1:{standin_port}/v1"
            env.setdefault("FD2_DEMO_API_KEY", "demo-key")
            argv = [sys.executable, STANDIN, "--port", str(standin_port)]
            children.append(subprocess.Popen(argv, env=env, cwd=ROOT))
            wait_ready(env["FD2_DEMO_UPSTREAM"] + "/models", children[-1], "the stand-in")
            upstream = f"the local stand-in on port {standin_port} (it ECHOES requests; no model)"
        else:
            env.setdefault("FD2_DEMO_API_KEY", env.get("OPENAI_API_KEY", ""))
            upstream = env["FD2_DEMO_UPSTREAM"]
        fd2 = [str(Path(sys.executable).with_name("fd2")), "serve", "--port", str(port)]
        children.append(subprocess.Popen([*fd2, "--manifests", MANIFESTS], env=env, cwd=ROOT))
        wait_ready(f"{base}/healthz", children[-1], "fd2")
        show("fd2 is up", f"  {base}  (manifests: {MANIFESTS}, upstream: {upstream})")
        if not serve_only:
            show_requests(base, echo, env["FD2_DEMO_API_KEY"])
            if os.environ.get("FD2_DEMO_EXIT") == "1":
                return
        show(
            "fd2 keeps serving; try it (Ctrl-C stops)",
            f"  curl {base}{CHAT_PATH} -H 'content-type: application/json' "
            '-d \'{"messages":[{"role":"user","content":"hi"}]}\'\n'
            f"  OpenAI SDK: OpenAI(base_url='{base}/demo/chat/v1', api_key='unused')",
        )
        children[-1].wait()
        if children[-1].returncode:
            fail(f"fd2 exited with status {children[-1].returncode}")
    except KeyboardInterrupt:
        pass
    finally:
        stop(children)


if __name__ == "__main__":
    main()
