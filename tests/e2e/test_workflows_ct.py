"""The worked workflow manifest through the Control Tower: created with the stand-in's API (which
stores it through the Control Tower's models, dropping what they do not declare), read back, and
served by fd2 from the Control Tower alone — the workflow runs, its model calls authorised and
keyed as the manifest says."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import Service
from .manifest_cache.ct_support import CT_SECRET, start_fd2_on, start_tower
from .support import assert_openai_error
from .workflow_support import CLIENT_KEY, PROJECT, WORKFLOW, WORKFLOW_ENV, example


def _workflow_config(manifest: dict[str, Any]) -> dict[str, Any]:
    entry = next(m for m in manifest["modules"] if m["name"] == WORKFLOW)
    config: dict[str, Any] = entry["config"]
    return config


@pytest.fixture
def tower(tmp_path: Path) -> Iterator[Service]:
    manifests = tmp_path / "ct-manifests"
    manifests.mkdir()
    service = start_tower(manifests, tmp_path)
    yield service
    service.stop()


def test_the_example_survives_the_control_tower_and_serves(
    tmp_path: Path, tower: Service, standin: Service
) -> None:
    written = example(standin.address)
    headers = {"X-DSPAI-Client-Secret": CT_SECRET}
    created = httpx.post(
        f"{tower.url}/manifests", json={"manifest": written}, headers=headers, timeout=10
    )
    assert created.status_code == 201, created.text
    stored = httpx.get(f"{tower.url}/manifests/{PROJECT}", headers=headers, timeout=10).json()

    # Everything the workflow module reads came back as written (all declared CT fields, nodes
    # and edges free-form), and fd2's settings are in metadata, which the Control Tower keeps.
    assert _workflow_config(stored) == _workflow_config(written)
    assert stored["metadata"]["fd2"] == written["metadata"]["fd2"]
    assert all("dependencies" not in m and "auth" not in m for m in stored["modules"])

    gateway = start_fd2_on(
        tower.url,
        tmp_path,
        "--default-env",
        "development",
        name="fd2-ct-workflows",
        env=WORKFLOW_ENV,
    )
    try:
        url = f"{gateway.url}/{PROJECT}/{WORKFLOW}/invoke"
        # Secure by default after the round trip: the workflow still asks for a credential.
        refused = httpx.post(url, json={"document": "text"}, timeout=30)
        assert refused.status_code == 401
        assert_openai_error(refused.content, status=401)

        answer = httpx.post(
            url,
            json={"document": "fd2 " * 600, "workflow_params": {}},
            headers={"authorization": f"Bearer {CLIENT_KEY}"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        state = answer.json()
        assert state["metadata"]["num_chunks"] == 2 and state["metadata"]["llm_calls"] == 3
        seen = json.loads(state["summaries"][0])
        # The inference module's upstream key came from metadata.fd2 (the CT dropped config
        # fields it does not declare), and the CT-kept sampling default reached the upstream.
        assert seen["authorization"] == "Bearer test-summarizer-upstream-key"
        assert seen["max_tokens"] == 300 and seen["temperature"] == 0.3
    finally:
        gateway.stop()
