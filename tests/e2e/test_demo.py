"""scripts/demo.py (`make demo`, `make run`): quiet when all is well, honest about the echo, loud
when its port is taken."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx

from .conftest import REPO, free_port

DEMO = [sys.executable, str(REPO / "scripts" / "demo.py")]
UPSTREAM_KEY = "demo-test-upstream-key-4711"


def demo_env(port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FD2_", "OPENAI_"))}
    env.update(FD2_DEMO_PORT=str(port), FD2_DEMO_API_KEY=UPSTREAM_KEY, PYTHONUNBUFFERED="1")
    return env


def test_demo_shows_requests_quietly_and_says_the_standin_echoes() -> None:
    env = demo_env(free_port()) | {"FD2_DEMO_EXIT": "1"}
    done = subprocess.run(DEMO, env=env, capture_output=True, text=True, timeout=90, cwd=REPO)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "fd2 is up" in output and "ECHOES requests" in output
    assert "its answer is an echo of the request fd2 sent it" in output
    assert "-> 200 (x-request-id " in output and "system: You are a concise assistant" in output
    assert "data: [DONE]" in output and "content '1;'" in output
    noisy = [line for line in output.splitlines() if " ERROR " in line or " WARNING " in line]
    assert not noisy, output
    # The key fd2 adds upstream is shown as its source, never as its value.
    assert UPSTREAM_KEY not in output and "Bearer <FD2_DEMO_API_KEY>" in output


def test_demo_refuses_a_port_in_use() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = subprocess.run(
            DEMO, env=demo_env(port), capture_output=True, text=True, timeout=30, cwd=REPO
        )
    assert done.returncode == 1
    assert f"127.0.0.1:{port} is already in use" in done.stderr
    assert "FD2_DEMO_PORT=" in done.stderr and "fd2 is up" not in done.stdout


def test_make_run_serves_the_demo_project_until_sigterm() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [*DEMO, "--serve"],
        env=demo_env(port),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()[0]
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "fd2 did not come up"
            time.sleep(0.1)
        answer = httpx.post(
            base + "/demo/chat/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "hi"}]},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["object"] == "chat.completion"
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=45)[0].decode()
        assert proc.returncode == 0, output
        assert "fd2 keeps serving" in output and "POST /demo" not in output
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    # The demo took fd2 down with it.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
