"""Manifests changed on disk while requests run: new answers, no failed request."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import httpx

from .conftest import PrivateFd2
from .support import ACME_PROMPT, chat_body, wait_until

NEW_PROMPT = "You are ACME's rewritten assistant, version two."


class _Traffic:
    """Sends chat requests to acme/chat in a loop on a thread; records what each answer showed."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._stop = threading.Event()
        self.prompts: list[str] = []
        self.failures: list[str] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def count(self) -> int:
        return len(self.prompts) + len(self.failures)

    def _run(self) -> None:
        with httpx.Client(base_url=self._url, timeout=10.0) as client:
            while not self._stop.is_set():
                try:
                    response = client.post("/acme/chat/v1/chat/completions", content=chat_body())
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                    continue
                if response.status_code != 200:
                    self.failures.append(f"{response.status_code}: {response.text[:300]}")
                    continue
                seen = json.loads(response.json()["choices"][0]["message"]["content"])
                self.prompts.append(seen["messages"][0]["content"])


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.parent / f".{path.name}.tmp"
    temporary.write_text(text)
    os.replace(temporary, path)


def _with_chat_prompt(manifest_text: str, prompt: str) -> str:
    manifest = json.loads(manifest_text)
    for module in manifest["modules"]:
        if module["name"] == "chat":
            module["config"]["system_prompt"] = prompt
    return json.dumps(manifest, indent=2)


def test_manifest_change_applies_without_failed_requests(private_fd2: PrivateFd2) -> None:
    acme = private_fd2.manifests / "acme.json"
    with _Traffic(private_fd2.service.url) as traffic:
        wait_until(lambda: traffic.count() >= 10, timeout=10, what="traffic to start")
        assert set(traffic.prompts) == {ACME_PROMPT}, traffic.failures[:3]
        _write_atomically(acme, _with_chat_prompt(acme.read_text(), NEW_PROMPT))
        wait_until(
            lambda: NEW_PROMPT in traffic.prompts[-5:],
            timeout=10,
            what="answers to show the new system prompt",
        )
        after = traffic.count()
        wait_until(lambda: traffic.count() >= after + 20, timeout=10, what="more traffic")
    assert traffic.failures == []
    first_new = traffic.prompts.index(NEW_PROMPT)
    assert set(traffic.prompts[:first_new]) == {ACME_PROMPT}
    assert set(traffic.prompts[first_new:]) == {NEW_PROMPT}, "answers went back to the old prompt"


def test_broken_manifest_on_disk_keeps_the_last_good_one(private_fd2: PrivateFd2) -> None:
    """A manifest that fails to load never replaces a working one (the architecture's rule)."""
    acme = private_fd2.manifests / "acme.json"
    with _Traffic(private_fd2.service.url) as traffic:
        wait_until(lambda: traffic.count() >= 10, timeout=10, what="traffic to start")
        good = acme.read_text()
        _write_atomically(acme, good[:200])
        before = traffic.count()
        # Nothing to poll for: the point is that several of fd2's directory checks (1 s apart by
        # default) see the broken file while requests keep coming.
        time.sleep(3.0)
        assert traffic.count() > before + 10
        assert traffic.failures == []
        _write_atomically(acme, _with_chat_prompt(good, NEW_PROMPT))
        wait_until(
            lambda: NEW_PROMPT in traffic.prompts[-5:],
            timeout=10,
            what="a repaired manifest to be picked up",
        )
    assert traffic.failures == []


def test_a_module_removed_on_disk_is_no_longer_served(private_fd2: PrivateFd2) -> None:
    """Routes already resolved (and remembered) on the old table are not served from the new."""
    acme = private_fd2.manifests / "acme.json"
    url = private_fd2.service.url
    with httpx.Client(base_url=url, timeout=10.0) as client:
        for _ in range(3):  # resolved, then served from what was resolved
            answer = client.post("/acme/chat/v1/chat/completions", content=chat_body())
            assert answer.status_code == 200, answer.text
        manifest = json.loads(acme.read_text())
        manifest["modules"] = [m for m in manifest["modules"] if m["name"] != "chat"]
        _write_atomically(acme, json.dumps(manifest, indent=2))

        def gone() -> bool:
            answer = client.post("/acme/chat/v1/chat/completions", content=chat_body())
            return answer.status_code == 404

        wait_until(gone, timeout=10, what="the removed module to be refused")
        refused = client.post("/acme/chat/v1/chat/completions", content=chat_body())
        assert refused.status_code == 404
        assert refused.json()["error"]["message"] == "Unknown module 'chat' in project 'acme'."
