import asyncio
import json
from pathlib import Path
from typing import ClassVar

import aiohttp
import pytest

from fd2.control.manifests.decode import decode_manifest
from fd2.control.registry import ModuleRegistry
from fd2.control.route_builder import RouteBuilder
from fd2.control.secrets import Secret, SecretResolver
from fd2.control.tasks import Supervisor
from fd2.module import Module, ModuleContext, Timeouts
from fd2.serving.errors import ConfigError, NotFound
from fd2.telemetry.metrics import MetricsRegistry

EXAMPLES = Path(__file__).parents[2] / "examples" / "manifests"
ENV = {
    "ACME_UPSTREAM_API_KEY": "acme-key-value",
    "BILLING_UPSTREAM_API_KEY": "billing-key",
    "ACME_DEV_JWT_SECRET": "acme-dev-jwt-secret",
}


class RecordingModule(Module):
    """A real, minimal module: remembers its context and whether it was closed."""

    module_types = ("inference_endpoint", "inference_openai")
    secret_fields = frozenset({"api_key"})

    def __init__(self) -> None:
        self.context: ModuleContext | None = None
        self.closed = False

    async def setup(self, context: ModuleContext) -> None:
        if context.config.get("fail_setup"):
            raise RuntimeError("boom")
        if context.config.get("refuse"):
            raise ConfigError("refused by module")
        self.context = context

    def endpoints(self):
        async def handler(request, send):  # pragma: no cover - never called here
            return None

        return {"/v1/models": {"GET": handler}}

    async def close(self) -> None:
        self.closed = True


def acme(**changes):
    raw = json.loads((EXAMPLES / "acme.json").read_text())
    for module in raw["modules"]:
        if module["name"] == "chat":
            module["config"].update(changes)
    return decode_manifest(json.dumps(raw).encode(), origin="acme.json")


@pytest.fixture
async def builder():
    async with aiohttp.ClientSession() as http:
        yield RouteBuilder(
            registry=ModuleRegistry(classes={"inference_endpoint": RecordingModule}),
            secrets=SecretResolver(environ=ENV),
            http=http,
            default_environment="development",
            base_timeouts=Timeouts(),
            environ=ENV,
        )


async def test_project_compiles_to_routes_per_environment(builder):
    assert await builder.apply_project("acme", [("acme.json", acme())], "d1")
    chat = builder.table.groups[("acme", "chat")]
    assert set(chat.by_environment) == {"development", "staging", "production"}
    dev = chat.by_environment["development"]
    assert dev.unavailable is None and dev.loaded is not None
    context = dev.loaded.instance.context
    assert context.config["endpoint_url"] == "http://127.0.0.1:9100/v1/chat/completions"
    assert isinstance(context.config["api_key"], Secret)
    assert context.config["api_key"].reveal() == "acme-key-value"
    assert "acme-key-value" not in repr(context.config)
    assert context.http is not None and context.environment == "development"
    # production's upstream key lives in Vault, which this gateway has no backend for.
    prod = chat.by_environment["production"]
    assert isinstance(prod.unavailable, ConfigError)
    assert "vault" in prod.unavailable.message and "production" in prod.unavailable.message


async def test_disabled_and_unserved_modules_answer_404(builder):
    raw = json.loads((EXAMPLES / "acme.json").read_text())
    raw["modules"].append(
        {"module_type": "inference_endpoint", "name": "old", "status": "archived"}
    )
    await builder.apply_project(
        "acme", [("acme.json", decode_manifest(json.dumps(raw).encode(), origin="a"))], "d1"
    )
    archived = builder.table.groups[("acme", "old")].by_environment["development"]
    assert isinstance(archived.unavailable, NotFound) and "archived" in archived.unavailable.message
    for name in ("legacy", "observability", "auth", "vault-manager"):
        route = builder.table.groups[("acme", name)].by_environment["development"]
        assert isinstance(route.unavailable, NotFound), name


async def test_unchanged_digest_does_not_rebuild(builder):
    assert await builder.apply_project("acme", [("acme.json", acme())], "same")
    table = builder.table
    assert not await builder.apply_project("acme", [("acme.json", acme())], "same")
    assert builder.table is table


async def test_swap_closes_replaced_instances_once_idle(builder):
    await builder.apply_project("acme", [("acme.json", acme())], "v1")
    old = builder.table.groups[("acme", "chat")].by_environment["development"].loaded
    idle = builder.table.groups[("acme", "embed")].by_environment["development"].loaded
    old.acquire()  # a request still running on the old instance
    await builder.apply_project("acme", [("acme.json", acme(temperature=0.5))], "v2")
    new = builder.table.groups[("acme", "chat")].by_environment["development"].loaded
    assert new is not old
    assert new.instance.context.config["temperature"] == 0.5
    await asyncio.sleep(0)
    await idle.wait_closed()
    assert idle.instance.closed
    assert not old.instance.closed  # still in use
    old.release()
    await old.wait_closed()
    assert old.instance.closed and not new.instance.closed


async def test_failing_modules_do_not_break_the_project(builder):
    await builder.apply_project("acme", [("acme.json", acme(fail_setup=True))], "v1")
    chat = builder.table.groups[("acme", "chat")].by_environment["development"]
    assert isinstance(chat.unavailable, ConfigError)
    assert "failed to start" in chat.unavailable.message
    embed = builder.table.groups[("acme", "embed")].by_environment["development"]
    assert embed.unavailable is None
    await builder.apply_project("acme", [("acme.json", acme(refuse=True))], "v2")
    chat = builder.table.groups[("acme", "chat")].by_environment["development"]
    assert "refused by module" in chat.unavailable.message


async def test_implementation_outside_allowed_packages_is_refused(builder):
    raw = json.loads((EXAMPLES / "billing-assistant.module.json").read_text())
    raw["runtime"]["implementation"] = "os.system"
    manifest = decode_manifest(json.dumps(raw).encode(), origin="b.json")
    await builder.apply_project("billing", [("b.json", manifest)], "v1")
    route = builder.table.groups[("billing", "assistant")].by_environment["development"]
    assert isinstance(route.unavailable, ConfigError)
    assert "outside the allowed packages" in route.unavailable.message


async def test_removing_a_project_retires_its_routes(builder):
    await builder.apply_project("acme", [("acme.json", acme())], "v1")
    loaded = builder.table.groups[("acme", "chat")].by_environment["development"].loaded
    await builder.apply_project("acme", None, "")
    assert "acme" not in builder.table.projects
    assert ("acme", "chat") not in builder.table.groups
    await loaded.wait_closed()
    assert loaded.instance.closed


async def test_single_module_manifest_gets_endpoints_references_and_timeouts(builder):
    raw = json.loads((EXAMPLES / "billing-assistant.module.json").read_text())
    raw["runtime"]["implementation"] = f"{__name__}.RecordingModule"
    manifest = decode_manifest(json.dumps(raw).encode(), origin="billing.json")
    builder._registry = ModuleRegistry(classes={}, allowed_packages=[__name__.split(".")[0]])
    await builder.apply_project("billing", [("billing.json", manifest)], "v1")
    group = builder.table.groups[("billing", "assistant")]
    context = group.by_environment["staging"].loaded.instance.context
    assert context.endpoints.primary == "http://127.0.0.1:9101/v1"
    assert context.endpoints.fallback == "http://127.0.0.1:9103/v1"
    assert context.references["api_key"].reveal() == "billing-key"
    # optional references that cannot be resolved are None, not failures
    assert context.references["jwt_signing_key"] is None
    assert context.references["org_header"] is None
    assert context.timeouts == Timeouts(connect_s=2, read_s=60, total_s=300)


class BusyModule(Module):
    """Uses the context's shared means: a background task, a metric, the Redis client."""

    module_types = ("busy",)
    events: ClassVar[list[str]] = []

    async def setup(self, context: ModuleContext) -> None:
        self.context = context
        self.counter = context.metrics.counter("setups_total", "Set-ups")
        self.counter.inc()
        context.tasks.spawn("heartbeat", self._beat)
        if context.config.get("fail_after_spawn"):
            await asyncio.sleep(0)  # the task has started
            raise ConfigError("cannot serve after all")

    async def _beat(self) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            BusyModule.events.append(f"task stopped {self.context.config.get('n')}")

    def endpoints(self):
        return {}

    async def close(self) -> None:
        BusyModule.events.append(f"closed {self.context.config.get('n')}")


def busy(**config):
    raw = {
        "project_id": "busy",
        "modules": [{"module_type": "busy", "name": "b", "config": config}],
    }
    return [("busy.json", decode_manifest(json.dumps(raw).encode(), origin="busy.json"))]


async def test_the_context_carries_the_workers_shared_means_and_module_tasks_end_first():
    BusyModule.events = []
    shared_redis = object()  # stands for the worker's client: handed over as it is
    metrics = MetricsRegistry()
    tasks = Supervisor()
    async with aiohttp.ClientSession() as http:
        builder = RouteBuilder(
            registry=ModuleRegistry(classes={"busy": BusyModule}),
            secrets=SecretResolver(environ={}),
            http=http,
            default_environment="development",
            base_timeouts=Timeouts(),
            environ={},
            redis=shared_redis,  # type: ignore[arg-type]
            metrics=metrics,
            tasks=tasks,
        )
        await builder.apply_project("busy", busy(n=1), "v1")
        loaded = builder.table.groups[("busy", "b")].by_environment["development"].loaded
        assert loaded.instance.context.redis is shared_redis
        assert [job.name for job in tasks.tasks] == ["busy/b [development]: heartbeat"]
        await builder.apply_project("busy", busy(n=2), "v2")
        await loaded.wait_closed()
        # The replaced instance's task stopped before the instance was closed.
        assert BusyModule.events == ["task stopped 1", "closed 1"]
        assert 'fd2_busy_setups_total{environment="development",module="b",project="busy"} 2.0' in (
            metrics.render().decode()
        )
        await builder.close()
        assert BusyModule.events[2:] == ["task stopped 2", "closed 2"]
        assert tasks.tasks == []


async def test_tasks_a_failed_set_up_started_are_stopped():
    BusyModule.events = []
    tasks = Supervisor()
    async with aiohttp.ClientSession() as http:
        builder = RouteBuilder(
            registry=ModuleRegistry(classes={"busy": BusyModule}),
            secrets=SecretResolver(environ={}),
            http=http,
            default_environment="development",
            base_timeouts=Timeouts(),
            environ={},
            tasks=tasks,
        )
        await builder.apply_project("busy", busy(n=1, fail_after_spawn=True), "v1")
        route = builder.table.groups[("busy", "b")].by_environment["development"]
        assert route.unavailable is not None and "cannot serve" in route.unavailable.message
        assert BusyModule.events == ["task stopped 1"] and tasks.tasks == []
