"""/readyz, /metrics and /admin on the session fd2 (manifest directory, no admin token)."""

from __future__ import annotations

import httpx

from .support import assert_openai_error


def test_readyz_with_a_readable_manifest_directory(http: httpx.Client) -> None:
    response = http.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}
    assert response.headers["x-request-id"]


def test_metrics_are_prometheus_text(http: httpx.Client) -> None:
    response = http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = dict(
        line.rsplit(" ", 1) for line in response.text.splitlines() if not line.startswith("#")
    )
    assert float(samples["fd2_routes"]) > 0
    assert float(samples["fd2_route_rebuild_seconds_count"]) >= 1
    assert "fd2_control_tower_fetches_total" not in response.text  # no Control Tower here
    assert "test-acme-key" not in response.text


def test_admin_is_404_without_a_configured_token(http: httpx.Client) -> None:
    for method, path in (("GET", "/admin/routes"), ("POST", "/admin/manifests/acme/refresh")):
        response = http.request(method, path, headers={"authorization": "Bearer guess"})
        assert response.status_code == 404
        assert assert_openai_error(response.content)["code"] == "not_found"
