"""Module.health(): asked in the background for every serving instance, each answer bounded."""

import asyncio
import json
import logging

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from fd2.control.manifests.decode import decode_manifest
from fd2.control.module_health import ModuleHealth
from fd2.control.registry import ModuleRegistry
from fd2.control.route_builder import RouteBuilder
from fd2.control.secrets import SecretResolver
from fd2.control.tasks import Supervisor
from fd2.module import Health, Module, ModuleContext, Timeouts
from fd2.telemetry.metrics import MetricsRegistry


class Checked(Module):
    """Answers health as its config says: ok, sick, hang, raise or not a Health."""

    module_types = ("checked",)

    async def setup(self, context: ModuleContext) -> None:
        self.how = context.config["how"]
        self.asked = 0

    def endpoints(self):
        return {}

    async def health(self) -> Health:
        self.asked += 1
        if self.how == "sick":
            return Health(ok=False, detail="upstream refuses connections")
        if self.how == "hang":
            await asyncio.Event().wait()
        if self.how == "raise":
            raise RuntimeError("secret-detail-77")
        if self.how == "wrong":
            return "fine"  # type: ignore[return-value]
        return Health(ok=True)


@pytest.fixture
async def builder():
    raw = {
        "project_id": "p",
        "modules": [
            {"module_type": "checked", "name": how, "config": {"how": how}}
            for how in ("ok", "sick", "hang", "raise", "wrong")
        ],
    }
    async with aiohttp.ClientSession() as http:
        builder = RouteBuilder(
            registry=ModuleRegistry(classes={"checked": Checked}),
            secrets=SecretResolver(environ={}),
            http=http,
            default_environment="development",
            base_timeouts=Timeouts(),
            environ={},
        )
        manifest = decode_manifest(json.dumps(raw).encode(), origin="p.json")
        await builder.apply_project("p", [("p.json", manifest)], "d")
        yield builder
        await builder.close()


async def test_every_instance_is_asked_once_per_round_within_the_time_bound(builder, caplog):
    health = ModuleHealth(builder, timeout_s=0.1)
    with caplog.at_level(logging.WARNING, logger="fd2.health"):
        began = asyncio.get_running_loop().time()
        await health.check()
        took = asyncio.get_running_loop().time() - began
    assert took < 1.0  # the hanging check was cut at 0.1 s, all checked at once
    assert health.of("p", "ok", "development") == Health(ok=True)
    details = {entry["module"]: entry["detail"] for entry in health.unhealthy()}
    assert details == {
        "sick": "upstream refuses connections",
        "hang": "no health answer within 0.1 s",
        "raise": "the health check failed (RuntimeError)",
        "wrong": "the health check did not return a Health",
    }
    assert "secret-detail-77" not in caplog.text
    assert caplog.text.count("is unhealthy") == 4
    await health.check()  # still unhealthy: not logged again
    assert caplog.text.count("is unhealthy") == 4


async def test_answers_are_metrics_and_follow_the_table(builder):
    health = ModuleHealth(builder, timeout_s=0.05)
    await health.check()
    metrics = MetricsRegistry()

    class Collector:
        def collect(self):
            return health.metric_families()

    metrics.add_collector(Collector())  # type: ignore[arg-type]
    values = {
        sample.labels["module"]: sample.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for sample in family.samples
        if sample.name == "fd2_module_healthy"
    }
    assert values == {"ok": 1.0, "sick": 0.0, "hang": 0.0, "raise": 0.0, "wrong": 0.0}
    await builder.apply_project("p", None, "")
    await health.check()
    assert health.unhealthy() == [] and health.of("p", "ok", "development") is None


async def test_the_supervised_round_runs_at_once_and_then_every_interval(builder):
    tasks = Supervisor()
    health = ModuleHealth(builder, interval_s=0.05, timeout_s=0.01)
    health.start(tasks)
    loaded = builder.table.groups[("p", "ok")].by_environment["development"].loaded
    await asyncio.sleep(0.02)
    assert loaded.instance.asked == 1  # the first round does not wait for the interval
    await asyncio.sleep(0.1)
    assert loaded.instance.asked >= 2
    await tasks.aclose()
