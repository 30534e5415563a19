"""The compose stack's topology on loopback: three fd2 behind HAProxy with deploy/compose's own
haproxy.cfg, sharing Redis, reading manifests from the Control Tower stand-in with a secret file.

The fd2 settings are those of deploy/compose/compose.yaml (`make deploy-check` holds that file to
them); only addresses differ: loopback ports instead of Docker's DNS names.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import REPO, Service, free_port, start_service
from .leaks import LEAKS
from .redis_server import running_redis

COMPOSE = REPO / "deploy" / "compose"
CT_SECRET = "scaleout-control-tower-secret-0451"
UPSTREAM_KEY = "scaleout-upstream-key-0452"
REPLICAS = 3
CHAT = {"messages": [{"role": "user", "content": "hi"}]}
LEAKS.add_secret(CT_SECRET)
LEAKS.add_secret(UPSTREAM_KEY)


def haproxy_config(port: int, replicas: list[Service]) -> str:
    """haproxy.cfg as shipped, with its Docker DNS discovery swapped for the loopback replicas."""
    text = (COMPOSE / "haproxy.cfg").read_text()
    template = next(line for line in text.splitlines() if "server-template" in line)
    servers = "\n".join(f"    server fd2-{i} {s.address} check" for i, s in enumerate(replicas))
    assert "    bind :8080" in text
    return text.replace(template, servers).replace("    bind :8080", f"    bind 127.0.0.1:{port}")


@pytest.fixture
def stack(tmp_path: Path, standin: Service) -> Iterator[tuple[Service, list[Service], Service]]:
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(haproxy).exists():
        pytest.fail("haproxy is not installed: run `make haproxy`", pytrace=False)
    secret_file = tmp_path / "control_tower_secret"
    secret_file.write_text(CT_SECRET + "\n")
    services: list[Service] = []
    with running_redis(tmp_path) as redis_url:
        try:
            ct_port = free_port()
            ct_argv = [sys.executable, str(REPO / "tests/standins/control_tower.py")]
            ct_argv += ["--port", str(ct_port), "--manifests", str(REPO / "examples/demo")]
            services.append(
                start_service(
                    "control-tower",
                    [*ct_argv, "--secret", CT_SECRET],
                    port=ct_port,
                    ready_path="/_ct/stats",
                    log_dir=tmp_path,
                )
            )
            env = {k: v for k, v in os.environ.items() if not k.startswith("FD2_")}
            env.update(
                FD2_MANIFESTS="",
                FD2_CONTROL_TOWER=f"http://127.0.0.1:{ct_port}",
                FD2_CONTROL_TOWER_SECRET_REF=f"file:{secret_file}",
                FD2_REDIS_URL=redis_url,
                FD2_WORKERS="1",
                FD2_SHUTDOWN_TIMEOUT="30",
                FD2_ACCESS_LOG="true",
                FD2_MANIFEST_ENV_ALLOW="FD2_DEMO_UPSTREAM",
                FD2_DEMO_UPSTREAM=f"{standin.url}/v1",
                FD2_DEMO_API_KEY=UPSTREAM_KEY,
            )
            fd2 = str(Path(sys.executable).with_name("fd2"))
            replicas = []
            for index in range(REPLICAS):
                port = free_port()
                replica = start_service(
                    f"fd2-replica-{index}",
                    [fd2, "serve", "--port", str(port)],
                    port=port,
                    ready_path="/readyz",
                    log_dir=tmp_path,
                    env=env,
                )
                services.append(replica)
                replicas.append(replica)
            lb_port = free_port()
            config = tmp_path / "haproxy.cfg"
            config.write_text(haproxy_config(lb_port, replicas))
            lb = start_service(
                "lb",
                ["timeout", "300", haproxy, "-db", "-f", str(config)],
                port=lb_port,
                ready_path="/demo/chat/v1/models",
                log_dir=tmp_path,
            )
            services.append(lb)
            yield lb, replicas, services[0]
        finally:
            for service in reversed(services):
                service.stop()


def served_by(replicas: list[Service]) -> Counter[str]:
    """Chat requests each replica's access log shows."""
    return Counter(
        {
            r.name: r.stderr_path.read_text().count("POST /demo/chat/v1/chat/completions 200")
            for r in replicas
        }
    )


def test_three_replicas_share_the_load_and_one_leaving_loses_no_request(stack) -> None:
    lb, replicas, control_tower = stack
    with httpx.Client(base_url=lb.url, timeout=30) as client:
        for _ in range(12):
            answer = client.post("/demo/chat/v1/chat/completions", json=CHAT)
            assert answer.status_code == 200, answer.text
            assert answer.headers["x-request-id"]
        # Every replica served (HAProxy's leastconn takes turns among idle replicas) ...
        counts = served_by(replicas)
        assert all(counts[r.name] >= 2 for r in replicas), counts
        # ... the Control Tower's manifest, fetched with the secret file's value (401 without).
        stats = client.get(f"{control_tower.url}/_ct/stats").json()
        assert stats["calls"].get("demo", 0) >= 1, stats
        # One replica stops (a rolling update, a scale-in): the others take every request.
        replicas[0].stop(grace=35)
        for _ in range(12):
            answer = client.post("/demo/chat/v1/chat/completions", json=CHAT)
            assert answer.status_code == 200, answer.text
        with client.stream(
            "POST", "/demo/chat/v1/chat/completions", json={**CHAT, "stream": True}
        ) as stream:
            assert stream.status_code == 200
            assert list(stream.iter_lines())[-2:] == ["data: [DONE]", ""]
    after = served_by(replicas[1:])
    assert sum(after.values()) - sum(counts[r.name] for r in replicas[1:]) >= 12, after
