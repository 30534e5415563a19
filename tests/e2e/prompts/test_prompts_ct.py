"""Prompts in a Control Tower project: written in `metadata.fd2.modules.<module>.config.prompts`,
stored by the Control Tower stand-in through its models (which drop undeclared module fields),
read back intact, and run by id through `/v1/responses` by fd2 serving from the Control Tower."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from ..conftest import Service
from ..manifest_cache.ct_support import CT_SECRET, acme_manifest, start_fd2_on, start_tower
from .conftest import REVIEW


@pytest.fixture
def tower(tmp_path: Path) -> Iterator[Service]:
    manifests = tmp_path / "ct-manifests"
    manifests.mkdir()
    service = start_tower(manifests, tmp_path)
    yield service
    service.stop()


def test_manifest_prompts_survive_the_control_tower(
    tmp_path: Path, tower: Service, standin: Service
) -> None:
    written = acme_manifest(standin.address, project_id="acmeprompts")
    modules = written.setdefault("metadata", {}).setdefault("fd2", {}).setdefault("modules", {})
    modules.setdefault("chat", {}).setdefault("config", {})["prompts"] = {"review": REVIEW}
    # The same field in the module's own config is dropped by the Control Tower's models.
    chat = next(m for m in written["modules"] if m["name"] == "chat")
    chat["config"]["prompts"] = {"dropped": REVIEW}
    headers = {"X-DSPAI-Client-Secret": CT_SECRET}
    created = httpx.post(
        f"{tower.url}/manifests", json={"manifest": written}, headers=headers, timeout=10
    )
    assert created.status_code == 201, created.text
    stored = httpx.get(f"{tower.url}/manifests/acmeprompts", headers=headers, timeout=10).json()
    assert stored["metadata"]["fd2"]["modules"]["chat"]["config"]["prompts"] == {"review": REVIEW}
    stored_chat = next(m for m in stored["modules"] if m["name"] == "chat")
    assert "prompts" not in stored_chat["config"]

    gateway = start_fd2_on(tower.url, tmp_path, "--default-env", "development", name="fd2-ct-p")
    try:
        client = openai.OpenAI(
            base_url=f"{gateway.url}/acmeprompts/chat/v1", api_key="unused", max_retries=0
        )
        response = client.responses.create(
            model="gpt-4o-mini", prompt={"id": "review", "variables": {"code": "x = 1"}}
        )
        assert json.loads(response.output_text)["messages"] == [
            {"role": "system", "content": "You review Python code."},
            {"role": "user", "content": "Review:\nx = 1"},
        ]
        with pytest.raises(openai.NotFoundError):
            client.responses.create(model="gpt-4o-mini", prompt={"id": "dropped"})
        client.close()
    finally:
        gateway.stop()


def test_a_structured_prompt_module_declared_in_metadata_is_served_from_the_control_tower(
    tmp_path: Path, tower: Service, standin: Service
) -> None:
    """The Control Tower's ModuleType enum has no structured_prompt: the module lives whole in
    metadata.fd2, which the Control Tower keeps, and fd2 serves it like a listed module."""
    written = acme_manifest(standin.address, project_id="acmeanalyze")
    modules = written.setdefault("metadata", {}).setdefault("fd2", {}).setdefault("modules", {})
    modules["analyze"] = {
        "module_type": "structured_prompt",
        "config": {"inference_module": "chat"},
        "dependencies": ["chat"],
        "auth": {"mode": "none"},
    }
    headers = {"X-DSPAI-Client-Secret": CT_SECRET}
    created = httpx.post(
        f"{tower.url}/manifests", json={"manifest": written}, headers=headers, timeout=10
    )
    assert created.status_code == 201, created.text
    stored = httpx.get(f"{tower.url}/manifests/acmeanalyze", headers=headers, timeout=10).json()
    assert stored["metadata"]["fd2"]["modules"]["analyze"] == modules["analyze"]
    gateway = start_fd2_on(tower.url, tmp_path, "--default-env", "development", name="fd2-ct-a")
    try:
        # Served by the module itself: its own 400 for a request without a prompt, not a 404.
        answer = httpx.post(f"{gateway.url}/acmeanalyze/analyze/v1/analyze", json={}, timeout=20)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["param"] == "prompt", answer.text
    finally:
        gateway.stop()
