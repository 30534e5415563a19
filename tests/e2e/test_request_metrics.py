"""Request metrics under Granian with two workers: one scrape counts the requests of both,
made-up project names create no series, and a stream fills the time-to-first-token histogram."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from fd2.serving.request_metrics import FLUSH_S

from .conftest import Service, build_manifest_dir
from .hardening import start_fd2_with, wait_for, worker_pids
from .support import chat_body

CHAT = "/acme/chat/v1/chat/completions"
REQUESTS = 30


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory, standin: Service) -> Iterator[Service]:
    """fd2 with two workers, left to make its own metrics directory (as operators run it)."""
    root = tmp_path_factory.mktemp("metrics")
    manifests = build_manifest_dir(root / "manifests", standin.address)
    server = start_fd2_with(manifests, root, "--workers", "2", name="fd2-metrics")
    try:
        assert wait_for(lambda: len(worker_pids(server.proc.pid)) == 2, timeout=20)
        yield server
    finally:
        server.stop()


def mapped_metric_files(worker: int) -> set[Path]:
    """The metric files a worker has mapped (its own values, in the shared directory)."""
    found = set()
    for line in Path(f"/proc/{worker}/maps").read_text().splitlines():
        path = line.split()[-1]
        if path.endswith(".db"):
            found.add(Path(path))
    return found


def scrape(
    server: Service, *, settle: bool = True
) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Every sample by name, then by its sorted labels (a fresh connection: any worker).

    `settle`: first wait until every worker has written its figures (a worker writes its own
    before it answers a scrape, the others' within FLUSH_S)."""
    if settle:
        time.sleep(FLUSH_S + 0.3)
    text = httpx.get(server.url + "/metrics", timeout=5).text
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def total(samples: dict[tuple[tuple[str, str], ...], float], **labels: str) -> float:
    return sum(
        value
        for key, value in samples.items()
        if all((name, wanted) in key for name, wanted in labels.items())
    )


def post_chat(server: Service, **extra: object) -> httpx.Response:
    return httpx.post(
        server.url + CHAT,
        content=chat_body(**extra),  # type: ignore[arg-type]
        headers={"content-type": "application/json"},
        timeout=10,
    )


def test_one_scrape_counts_the_requests_of_both_workers(two_workers: Service) -> None:
    server = two_workers
    before = total(scrape(server).get("fd2_requests_total", {}), project="acme", module="chat")
    for _ in range(REQUESTS):  # a fresh connection each: the kernel picks the worker
        assert post_chat(server).status_code == 200
    # Both workers answered some, each writing its own files in one directory `fd2 serve` made
    # for this start ...
    workers = worker_pids(server.proc.pid)
    files = [mapped_metric_files(worker) for worker in workers]
    assert all(
        f"counter_{pid}.db" in {p.name for p in own}
        for pid, own in zip(workers, files, strict=True)
    )
    directories = {path.parent for own in files for path in own}
    assert len(directories) == 1
    assert directories.pop().name.startswith("fd2-metrics-")
    # ... and every scrape, whichever worker answers it, shows all of them.
    for index in range(6):
        samples = scrape(server, settle=index == 0)
        counted = total(
            samples["fd2_requests_total"],
            project="acme",
            module="chat",
            endpoint="/v1/chat/completions",
            status="200",
        )
        assert counted - before == REQUESTS
        latency = total(
            samples["fd2_request_duration_seconds_count"], project="acme", module="chat"
        )
        assert latency >= REQUESTS
        # The control plane's figures still show (the answering worker's own).
        assert samples["fd2_routes"]


def test_unknown_projects_create_no_series(two_workers: Service) -> None:
    server = two_workers
    before = total(scrape(server)["fd2_requests_total"], project="unknown")
    names = [f"made-up-{secrets.token_hex(4)}" for _ in range(20)]
    for name in names:
        assert httpx.get(f"{server.url}/{name}/chat/v1/models", timeout=5).status_code == 404
    assert httpx.get(f"{server.url}/acme/chat/v1/no-such-endpoint", timeout=5).status_code == 404
    text = httpx.get(server.url + "/metrics", timeout=5).text
    assert not any(name in text for name in names)
    assert "no-such-endpoint" not in text
    samples = scrape(server)["fd2_requests_total"]
    assert total(samples, project="unknown", status="404") - before == len(names)
    assert total(samples, project="acme", endpoint="unknown", status="404") >= 1


def test_a_stream_fills_the_time_to_first_token_histogram(two_workers: Service) -> None:
    server = two_workers
    before = total(scrape(server).get("fd2_time_to_first_token_seconds_count", {}), project="acme")
    for _ in range(3):
        answer = post_chat(server, stream=True)
        assert answer.status_code == 200
        assert b"[DONE]" in answer.content
    samples = scrape(server)
    assert total(samples["fd2_time_to_first_token_seconds_count"], project="acme") - before == 3
    assert total(samples["fd2_active_streams"], project="acme") == 0


def test_upstream_errors_are_counted_by_kind(two_workers: Service) -> None:
    server = two_workers
    before = total(
        scrape(server).get("fd2_upstream_errors_total", {}), project="quick", kind="gateway_timeout"
    )
    answer = httpx.post(
        server.url + "/quick/chat/v1/chat/completions",
        content=chat_body(model="slow-3000"),
        headers={"content-type": "application/json"},
        timeout=10,
    )
    assert answer.status_code == 504
    samples = scrape(server)
    kind = total(samples["fd2_upstream_errors_total"], project="quick", kind="gateway_timeout")
    assert kind - before == 1
    assert total(samples["fd2_requests_total"], project="quick", status="504") >= 1


def test_a_stream_broken_midway_is_counted_by_its_module(two_workers: Service) -> None:
    server = two_workers
    before = scrape(server).get("fd2_upstream_errors_total", {})
    answer = post_chat(server, model="stream-break", stream=True)
    assert answer.status_code == 200  # the stream had started: the error is its last event
    assert b'"error"' in answer.content
    after = scrape(server)["fd2_upstream_errors_total"]
    grown = {
        dict(key)["kind"]
        for key, value in after.items()
        if dict(key)["project"] == "acme" and value > before.get(key, 0)
    }
    assert len(grown) == 1, grown
    assert (
        total(after, project="acme", module="chat")
        == total(before, project="acme", module="chat") + 1
    )
    assert total(scrape(server)["fd2_active_streams"], project="acme") == 0
