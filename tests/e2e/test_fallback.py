"""A module manifest's fallback endpoint takes over when the primary cannot be connected to."""

from __future__ import annotations

import json
from pathlib import Path

import openai

from .conftest import Service, free_port, quick_manifest, start_fd2


def test_unreachable_primary_fails_over_to_the_fallback(
    tmp_path: Path, standin: Service, standin_stats
) -> None:
    dead = f"127.0.0.1:{free_port()}"  # nothing listens here
    manifest = quick_manifest(standin.address)
    manifest["project"] = "failover"
    manifest["timeouts"] = {"connect_s": 2, "read_s": 10, "total_s": 20}
    manifest["endpoints"] = {
        "dev": {"primary": f"http://{dead}/v1", "fallback": f"http://{standin.address}/v1"}
    }
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "failover.json").write_text(json.dumps(manifest))
    service = start_fd2(manifests, tmp_path, name="fd2-failover")
    try:
        client = openai.OpenAI(
            base_url=f"{service.url}/failover/chat/v1", api_key="unused", max_retries=0
        )
        standin_stats.settle()
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
        seen = json.loads(reply.choices[0].message.content or "{}")
        assert seen["port"] == standin.port
        assert seen["authorization"] == "Bearer test-billing-key"
        chunks = list(
            client.chat.completions.create(
                model="chunks-4", messages=[{"role": "user", "content": "hi"}], stream=True
            )
        )
        assert [c.choices[0].delta.content for c in chunks if c.choices][1:5] == [
            "1;",
            "2;",
            "3;",
            "4;",
        ]
        assert standin_stats.get()["started"] == 2
    finally:
        service.stop()
