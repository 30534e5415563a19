"""The route table under load while a project's manifest changes continuously.

Streaming and plain requests run through the official SDK while the Control Tower's copy of the
project changes and is pushed every 150 ms: no request may fail, every stream must finish (on the
module instance it started with), and replaced instances must be closed once idle.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import openai

from ..support import wait_until
from .conftest import MakeGateway
from .ct_support import PROMPT, Gateway, Tower, set_prompt

STREAM_CHUNKS = 10
STREAM_MODEL = f"chunks-{STREAM_CHUNKS}-gap-30"  # ~0.3 s per stream: spans several swaps
EXPECTED_STREAM = "".join(f"{i};" for i in range(1, STREAM_CHUNKS + 1))


@dataclass
class Load:
    gateway: Gateway
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: dict[str, int] = field(default_factory=lambda: {"plain": 0, "stream": 0})
    failures: list[str] = field(default_factory=list)
    prompts: set[str] = field(default_factory=set)

    def _record(self, kind: str, prompt: str) -> None:
        with self.lock:
            self.done[kind] += 1
            self.prompts.add(prompt)

    def _fail(self, what: str) -> None:
        with self.lock:
            self.failures.append(what)

    def plain(self) -> None:
        while not self.stop.is_set():
            try:
                self._record("plain", self.gateway.prompt())
            except openai.OpenAIError as exc:
                self._fail(f"plain: {exc!r}")

    def stream(self) -> None:
        client = self.gateway.client()
        while not self.stop.is_set():
            try:
                text, prompt, finish = "", "", None
                stream = client.chat.completions.create(
                    model=STREAM_MODEL, messages=[{"role": "user", "content": "go"}], stream=True
                )
                for chunk in stream:
                    extra = chunk.model_extra or {}
                    if "standin" in extra:
                        prompt = extra["standin"]["messages"][0]["content"]
                    if chunk.choices:
                        text += chunk.choices[0].delta.content or ""
                        finish = chunk.choices[0].finish_reason or finish
                if text != EXPECTED_STREAM or finish != "stop":
                    self._fail(f"stream cut short: {text!r} finish={finish}")
                else:
                    self._record("stream", prompt)
            except openai.OpenAIError as exc:
                self._fail(f"stream: {exc!r}")


def test_continuous_changes_under_load_fail_no_request(
    tower: Tower, make_gateway: MakeGateway
) -> None:
    gateway = make_gateway(tower.url, "--manifest-ttl", "300")
    assert gateway.prompt() == PROMPT
    rebuilds_before = gateway.routes()["rebuilds"]["count"]
    load = Load(gateway)
    workers = [threading.Thread(target=load.plain) for _ in range(3)]
    workers += [threading.Thread(target=load.stream) for _ in range(3)]
    for worker in workers:
        worker.start()
    written: list[str] = []
    try:
        manifest = tower.read("acme")
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            prompt = f"version {len(written) + 1}"
            set_prompt(manifest, prompt)
            tower.write("acme", manifest)
            response = gateway.admin("POST", "/admin/manifests/acme/refresh")
            assert response.status_code == 200, response.text
            written.append(prompt)
            time.sleep(0.15)
    finally:
        load.stop.set()
        for worker in workers:
            worker.join(30)
    print(f"live changes: {len(written)} versions, requests done {load.done}")
    assert load.failures == []
    assert load.done["plain"] >= 20 and load.done["stream"] >= 10
    assert len(load.prompts - {PROMPT, *written}) == 0
    assert len(load.prompts) >= 5  # requests really ran across many versions
    routes = gateway.routes()
    assert routes["rebuilds"]["count"] - rebuilds_before == len(written)
    # Every replaced instance is closed once its last request has finished.
    wait_until(lambda: gateway.routes()["retired_instances_open"] == 0, timeout=10)
    assert gateway.metric("fd2_retired_instances_open") == 0
    assert gateway.prompt() == written[-1]
