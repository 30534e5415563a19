"""`make demo`: fd2 on the bundled manifests in front of a local OpenAI-compatible stand-in.

Starts the stand-in (unless FD2_DEMO_UPSTREAM points at a real provider), starts `fd2 serve`,
shows a chat request and a streamed one going through, then keeps fd2 serving until Ctrl-C
(or exits at once with FD2_DEMO_EXIT=1).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
PORT = int(os.environ.get("FD2_DEMO_PORT", "8080"))
STANDIN_PORT = 9100  # the bundled manifests' development upstream (127.0.0.1:9100)
BASE = f"http://127.0.0.1:{PORT}"


def start(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, env=env, cwd=ROOT)


def wait_ready(url: str, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{what} exited with status {process.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    sys.exit(f"{what} did not become ready at {url}")


def show(title: str, text: str) -> None:
    print(f"\n\033[1m== {title}\033[0m\n{text}", flush=True)


def main() -> None:
    env = dict(os.environ)
    children: list[subprocess.Popen[bytes]] = []
    if not env.get("FD2_DEMO_UPSTREAM"):
        env["FD2_DEMO_UPSTREAM"] = f"http://127.0.0.1:{STANDIN_PORT}/v1"
        env.setdefault("FD2_DEMO_API_KEY", "demo-key")
        standin = start(
            [sys.executable, "tests/standins/openai_upstream.py", "--port", str(STANDIN_PORT)], env
        )
        children.append(standin)
        wait_ready(f"http://127.0.0.1:{STANDIN_PORT}/v1/models", standin, "the stand-in upstream")
        upstream = "the local stand-in"
    else:
        env.setdefault("FD2_DEMO_API_KEY", env.get("OPENAI_API_KEY", ""))
        upstream = env["FD2_DEMO_UPSTREAM"]
    # demo.json reads its upstream with ${FD2_DEMO_UPSTREAM}: an explicit opt-in (docs/security.md).
    env.setdefault("FD2_MANIFEST_ENV_ALLOW", "FD2_DEMO_UPSTREAM")
    env.setdefault("ACME_UPSTREAM_API_KEY", "demo-key")
    env.setdefault("BILLING_UPSTREAM_API_KEY", "demo-key")
    # acme's chat depends on its `auth` (jwt_config) module, whose dev secret this is.
    env.setdefault("ACME_DEV_JWT_SECRET", "demo-only-jwt-secret-change-me-0123456789")
    fd2 = start(
        [
            str(Path(sys.executable).with_name("fd2")),
            "serve",
            "--port",
            str(PORT),
            "--manifests",
            "examples/manifests",
        ],
        env,
    )
    children.append(fd2)
    try:
        wait_ready(f"{BASE}/healthz", fd2, "fd2")
        show("fd2 is up", f"{BASE}  (manifests: examples/manifests, upstream: {upstream})")
        chat = httpx.post(
            f"{BASE}/demo/chat/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "Say hello through fd2."}]},
            timeout=60,
        )
        show(
            f"POST /demo/chat/v1/chat/completions -> {chat.status_code} "
            f"(x-request-id {chat.headers.get('x-request-id')})",
            chat.text,
        )
        show("POST /demo/chat/v1/chat/completions with stream=true (events as they arrive)", "")
        with httpx.stream(
            "POST",
            f"{BASE}/demo/chat/v1/chat/completions",
            json={"stream": True, "messages": [{"role": "user", "content": "Count to five."}]},
            timeout=60,
        ) as stream:
            for line in stream.iter_lines():
                if line:
                    print("  " + line, flush=True)
        if os.environ.get("FD2_DEMO_EXIT") == "1":
            return
        show(
            "fd2 keeps serving; try it (Ctrl-C stops)",
            f"  curl {BASE}/demo/chat/v1/chat/completions -H 'content-type: application/json' "
            '-d \'{"messages":[{"role":"user","content":"hi"}]}\'\n'
            f"  OpenAI SDK: OpenAI(base_url='{BASE}/demo/chat/v1', api_key='unused')",
        )
        fd2.wait()
    except KeyboardInterrupt:
        pass
    finally:
        for child in reversed(children):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=35)
            except subprocess.TimeoutExpired:
                child.kill()


if __name__ == "__main__":
    main()
