"""In-process module calls through a real route builder and route table: answers, errors,
streaming, early close, and a target looked up in the table the call is made against."""

import asyncio
from typing import Any

import aiohttp
import msgspec
import orjson
import pytest

from fd2.control.manifests.models import ProjectManifest
from fd2.control.registry import ModuleRegistry
from fd2.control.route_builder import RouteBuilder
from fd2.control.route_table import EMPTY_TABLE
from fd2.control.secrets import SecretResolver
from fd2.module import Module, ModuleContext, Timeouts
from fd2.pipeline.auth import JOB_IDENTITY
from fd2.serving.disconnect import cancel_on_disconnect
from fd2.serving.errors import BadRequest, ConfigError
from fd2.serving.module_calls import ModuleHandle
from fd2.serving.request import Request
from fd2.serving.responses import send_bytes
from fd2.types import Send


class Target(Module):
    """The called module: echoes, streams on cue, fails in the ways a module can."""

    module_types = ("target",)

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.stream_ended = asyncio.Event()
        self.cancelled = False
        self.closed = False

    async def setup(self, context: ModuleContext) -> None:
        if context.config.get("refuse"):
            raise ConfigError("refused by the target")
        self.tag = context.config["tag"]

    def endpoints(self):
        return {
            "/v1/echo": {"POST": self._echo},
            "/v1/stream": {"POST": self._stream},
            "/v1/refuse": {"GET": self._refuse},
            "/v1/crash": {"GET": self._crash},
            "/v1/silent": {"GET": self._silent},
        }

    async def _echo(self, request: Request, send: Send) -> None:
        body = await request.json_object()
        answer = {
            "tag": self.tag,
            "got": body,
            "request_id": request.request_id,
            "caller": request.scope.get("fd2.caller"),
            "authorization": (request.header(b"authorization") or b"").decode(),
            "path": request.path,
        }
        await send_bytes(send, 201, orjson.dumps(answer))

    async def _stream(self, request: Request, send: Send) -> None:
        await request.body()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        try:
            await send({"type": "http.response.body", "body": b"one,", "more_body": True})
            await cancel_on_disconnect(request, self.release.wait())
            await send({"type": "http.response.body", "body": b"two,", "more_body": True})
            await send({"type": "http.response.body", "body": b"three", "more_body": False})
        except BaseException:
            self.cancelled = True
            raise
        finally:
            self.stream_ended.set()

    async def _refuse(self, request: Request, send: Send) -> None:
        raise BadRequest("no such thing", param="thing")

    async def _crash(self, request: Request, send: Send) -> None:
        raise RuntimeError("a bug with secret-value-42 in its message")

    async def _silent(self, request: Request, send: Send) -> None:
        return None

    async def close(self) -> None:
        self.closed = True


class Caller(Module):
    module_types = ("caller",)

    async def setup(self, context: ModuleContext) -> None:
        self.modules = context.modules

    def endpoints(self):
        return {}


def project(**target_config: Any) -> list[tuple[str, ProjectManifest]]:
    raw = {
        "project_id": "shop",
        "environments": {"development": {}, "staging": {}},
        "modules": [
            {"module_type": "target", "name": "answers", "config": {"tag": "v1", **target_config}},
            {"module_type": "caller", "name": "front", "dependencies": ["answers"]},
            {"module_type": "caller", "name": "alone"},
        ],
    }
    return [("shop.json", msgspec.convert(raw, ProjectManifest))]


@pytest.fixture
async def builder():
    async with aiohttp.ClientSession() as http:
        builder = RouteBuilder(
            registry=ModuleRegistry(classes={"target": Target, "caller": Caller}),
            secrets=SecretResolver(environ={}),
            http=http,
            default_environment="development",
            base_timeouts=Timeouts(),
            environ={},
        )
        await builder.apply_project("shop", project(), "d1")
        yield builder
        await builder.close()


def handle(builder: RouteBuilder, environment: str = "development") -> ModuleHandle:
    caller = builder.table.groups[("shop", "front")].by_environment[environment].loaded
    assert caller is not None
    return caller.instance.modules["answers"]  # type: ignore[attr-defined, no-any-return]


def target(builder: RouteBuilder, environment: str = "development") -> Target:
    loaded = builder.table.groups[("shop", "answers")].by_environment[environment].loaded
    assert loaded is not None
    return loaded.instance  # type: ignore[return-value]


async def test_dependencies_and_only_they_are_handed_over_as_handles(builder):
    answers = handle(builder, "staging")
    assert (answers.name, answers.module_type, answers.environment) == (
        "answers",
        "target",
        "staging",
    )
    alone = builder.table.groups[("shop", "alone")].by_environment["development"].loaded
    assert alone is not None and alone.instance.modules == {}


async def test_a_call_runs_the_route_handler_and_answers_as_http_would(builder):
    answer = await handle(builder).call(
        "POST",
        "/v1/echo",
        {"question": "hi"},
        headers=[(b"Authorization", b"Bearer caller-token")],
        request_id="req-123",
    )
    assert answer.status == 201
    assert answer.header(b"content-type") == b"application/json"
    assert await answer.json() == {
        "tag": "v1",
        "got": {"question": "hi"},
        "request_id": "req-123",
        "caller": "shop/front",
        "authorization": "Bearer caller-token",
        "path": "/v1/echo",
    }


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("POST", "/v1/nosuch", 404, "not_found"),
        ("DELETE", "/v1/echo", 405, "method_not_allowed"),
        ("GET", "/v1/refuse", 400, "invalid_request"),
        ("GET", "/v1/crash", 500, "internal_error"),
        ("GET", "/v1/silent", 500, "internal_error"),
        ("POST", "/v1/echo", 400, "invalid_request"),  # no body: not a JSON object
    ],
)
async def test_errors_come_back_openai_shaped(builder, method, path, status, code):
    answer = await handle(builder).call(method, path)
    assert answer.status == status
    body = await answer.read()
    error = orjson.loads(body)["error"]
    assert error["code"] == code and b"secret-value-42" not in body and b"Traceback" not in body
    if status == 405:
        assert answer.header(b"allow") == b"POST"


async def test_an_unavailable_target_answers_its_reason(builder):
    await builder.apply_project("shop", project(refuse=True), "d2")
    answer = await handle(builder).call("POST", "/v1/echo", {})
    assert answer.status == 503
    assert "refused by the target" in orjson.loads(await answer.read())["error"]["message"]


async def test_a_streamed_answer_arrives_as_it_is_sent(builder):
    module = target(builder)
    answer = await asyncio.wait_for(handle(builder).call("POST", "/v1/stream", b"{}"), 2)
    assert answer.status == 200  # started, though the target has not finished
    chunks = aiter(answer)
    assert await anext(chunks) == b"one,"
    assert not module.stream_ended.is_set()
    module.release.set()
    assert [chunk async for chunk in chunks] == [b"two,", b"three"]
    assert module.stream_ended.is_set() and not module.cancelled


async def test_closing_an_answer_early_disconnects_and_cancels_the_target(builder):
    module = target(builder)
    async with await handle(builder).call("POST", "/v1/stream", b"{}") as answer:
        assert await anext(aiter(answer)) == b"one,"
    await asyncio.wait_for(module.stream_ended.wait(), 2)
    assert module.cancelled
    loaded = builder.table.groups[("shop", "answers")].by_environment["development"].loaded
    assert loaded is not None and loaded.in_flight == 0


async def test_the_target_is_looked_up_when_called_and_kept_until_its_answer_ends(builder):
    answers = handle(builder)
    old = target(builder)
    streaming = await answers.call("POST", "/v1/stream", b"{}")
    await builder.apply_project("shop", project(tag="v2"), "d2")  # rebuilt mid-stream
    echo = await answers.call("POST", "/v1/echo", {})  # a handle from before the rebuild
    assert (await echo.json())["tag"] == "v2"
    assert not old.closed  # its stream is still being read
    old.release.set()
    assert await streaming.read() == b"one,two,three"
    for _ in range(50):
        if old.closed:
            break
        await asyncio.sleep(0.01)
    assert old.closed


async def test_a_project_removed_from_the_table_answers_404(builder):
    answers = handle(builder)
    await builder.apply_project("shop", None, "")
    answer = await answers.call("POST", "/v1/echo", {})
    assert answer.status == 404


async def test_a_modules_handle_cannot_set_scope_entries() -> None:
    """The job runner's captured identity travels in the scope: a module's handle may not put
    anything there (it would let a module act as another caller)."""
    handle = ModuleHandle(
        lambda: EMPTY_TABLE,
        project="shop",
        module="answers",
        module_type="inference_endpoint",
        environment="development",
        caller="shop/front",
    )
    with pytest.raises(ValueError, match="scope entries"):
        await handle.call("POST", "/v1/chat/completions", {}, scope={JOB_IDENTITY: object()})
