"""The module served through an APISIX route it names, against real in-process HTTP upstreams.

The gateway module reaches the inference module as a dependency (its config resolved), as the
core hands it over; each test builds the context as the core does and sends one request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from fd2.control.secrets import Secret
from fd2.module import ModuleContext, ModuleDependency, Timeouts
from fd2.serving.errors import BadRequest, ConfigError, NotFound, UpstreamError
from fd2.serving.request import Request
from fd2_inference import InferenceModule

from .test_module import (
    CHAT,
    CHAT_OK,
    FakeUpstream,
    answer,
    closed_port,
    gateway_session,
    split,
    streaming,
)

GATEWAY = "apisix-convert-route"
TEMPLATE = {
    "templates": [
        {
            "name": "converter",
            "template": {
                "model": "llama-3.1-8b-instant",
                "messages": [
                    {"role": "system", "content": "Convert SAS to Python."},
                    {"role": "user", "content": "{{user_input}}"},
                ],
            },
        }
    ]
}


@pytest.fixture
async def upstreams() -> AsyncIterator[list[FakeUpstream]]:
    fakes = [FakeUpstream(), FakeUpstream()]
    for fake in fakes:
        await fake.start()
    yield fakes
    for fake in fakes:
        await fake.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with gateway_session() as shared:
        yield shared


def port_of(fake: FakeUpstream) -> int:
    return int(fake.url("/").split(":")[2].split("/")[0])


def gateway_config(nodes: Mapping[str, Any], plugins: Any = None, **route: Any) -> dict[str, Any]:
    return {
        "gateway_type": "apisix",
        "routes": [
            {
                "name": "convert",
                "uri": "/sas2py/convert",
                "methods": ["POST"],
                "upstream": {"type": "roundrobin", "nodes": dict(nodes)},
                "plugins": plugins or {},
                **route,
            }
        ],
    }


class Served:
    """A module set up on a route, and the requests sent through it."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        gateway: Mapping[str, Any],
        *,
        config: Mapping[str, Any] | None = None,
        dependency: ModuleDependency | None = None,
    ) -> None:
        self.session = session
        self.config = {
            "apisix_route": "convert",
            "apisix_gateway_module": GATEWAY,
            "endpoint_url": "http://127.0.0.1:1/sas2py/convert",  # APISIX's address: not used
            "model_name": "default-model",
            **(config or {}),
        }
        self.dependency = dependency or ModuleDependency(
            name=GATEWAY, module_type="api_gateway", config=gateway
        )
        self.module = InferenceModule()

    def context(self) -> ModuleContext:
        return ModuleContext(
            project="sas2py",
            module="convert",
            environment="development",
            module_type="inference_endpoint",
            config=self.config,
            references={},
            endpoints=None,
            timeouts=Timeouts(connect_s=1.0, read_s=5.0, total_s=5.0),
            http=self.session,
            logger=logging.getLogger("fd2.module.test"),
            dependencies={GATEWAY: self.dependency},
        )

    async def setup(self) -> Served:
        await self.module.setup(self.context())
        return self

    async def send(
        self,
        body: Any,
        path: str = "/v1/chat/completions",
        headers: list[tuple[bytes, bytes]] | None = None,
        method: str = "POST",
    ) -> tuple[int, dict[bytes, bytes], bytes]:
        raw = orjson.dumps(body) if body is not None else b""
        sent: list[dict[str, Any]] = []
        delivered = False

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": raw, "more_body": False}
            await asyncio.Event().wait()  # the client stays until the answer is complete
            return {"type": "http.disconnect"}

        async def send(message: Any) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "method": method,
            "path": f"/sas2py/convert{path}",
            "headers": [(b"authorization", b"Bearer client-token"), *(headers or [])],
            "query_string": b"",
            "client": ("10.0.0.9", 40000),
        }
        request = Request(
            scope,
            receive,
            request_id="req-9",
            project="sas2py",
            module="convert",
            environment="development",
            path=path,
            content_length=len(raw),
            max_body=1 << 20,
        )
        await self.module.endpoints()[path][method](request, send)
        return (
            int(sent[0]["status"]),
            dict(sent[0]["headers"]),
            b"".join(m.get("body", b"") for m in sent[1:]),
        )


async def served(
    session: aiohttp.ClientSession, gateway: Mapping[str, Any], **options: Any
) -> Served:
    return await Served(session, gateway, **options).setup()


# --- what goes upstream ---------------------------------------------------------------------------


async def test_the_route_path_headers_and_host_go_upstream(
    session: aiohttp.ClientSession, upstreams: list[FakeUpstream]
) -> None:
    fake = upstreams[0]
    gateway = gateway_config(
        {f"127.0.0.1:{port_of(fake)}": 1},
        {
            "proxy-rewrite": {
                "uri": "/openai/v1/chat/completions",
                "host": "api.groq.com",
                "headers": {
                    "Authorization": "Bearer gsk-route-key",
                    "Accept-Encoding": "identity",
                    "X-User": "$http_x_user",
                },
            },
            "request-id": {"header_name": "X-Trace-Id"},
            "prometheus": {},
        },
    )
    module = await served(session, gateway, config={"api_key": Secret("sk-module-key")})
    status, headers, body = await module.send(CHAT, headers=[(b"x-user", b"ann")])
    assert status == 200
    assert body == CHAT_OK
    seen = fake.seen[0]
    assert seen.path == "/openai/v1/chat/completions"
    # The route's Authorization replaces the module's own key; the client's never goes upstream.
    assert seen.headers.getall("authorization") == ["Bearer gsk-route-key"]
    assert seen.headers["host"] == "api.groq.com"
    assert seen.headers["accept-encoding"] == "identity"
    assert seen.headers["x-user"] == "ann"
    assert seen.headers["x-request-id"] == "req-9"
    assert seen.headers["x-trace-id"] == "req-9"
    assert headers[b"x-trace-id"] == b"req-9"
    assert orjson.loads(seen.body)["model"] == "m"


async def test_headers_the_route_sets_are_not_sent_twice(
    session: aiohttp.ClientSession, upstreams: list[FakeUpstream]
) -> None:
    fake = upstreams[0]
    own = {
        "Content-Type": "application/json; charset=utf-8",
        "Accept": "application/json",
        "X-Request-Id": "fixed",
    }
    gateway = gateway_config(
        {f"127.0.0.1:{port_of(fake)}": 1}, {"proxy-rewrite": {"headers": {"set": own}}}
    )
    await (await served(session, gateway)).send(CHAT)
    seen = fake.seen[0].headers
    assert seen.getall("content-type") == ["application/json; charset=utf-8"]
    assert seen.getall("accept") == ["application/json"]
    assert seen.getall("x-request-id") == ["fixed"]


async def test_the_modules_key_is_sent_unless_the_route_says_otherwise(
    session: aiohttp.ClientSession, upstreams: list[FakeUpstream]
) -> None:
    fake = upstreams[0]
    nodes = {f"127.0.0.1:{port_of(fake)}": 1}
    key = {"api_key": Secret("sk-module-key")}
    await (await served(session, gateway_config(nodes), config=key)).send(CHAT)
    assert fake.seen[0].headers["authorization"] == "Bearer sk-module-key"
    assert fake.seen[0].path == "/sas2py/convert"  # no proxy-rewrite: the route's own uri
    removing = {"proxy-rewrite": {"headers": {"remove": ["Authorization"], "add": {"X-A": "1"}}}}
    await (await served(session, gateway_config(nodes, removing), config=key)).send(CHAT)
    assert "authorization" not in fake.seen[1].headers
    assert fake.seen[1].headers["x-a"] == "1"


async def test_weights_decide_the_node(
    session: aiohttp.ClientSession, upstreams: list[FakeUpstream]
) -> None:
    heavy, light = upstreams
    nodes = {f"127.0.0.1:{port_of(heavy)}": 3, f"http://127.0.0.1:{port_of(light)}": 1}
    module = await served(session, gateway_config(nodes))
    for _ in range(8):
        assert (await module.send(CHAT))[0] == 200
    assert (len(heavy.seen), len(light.seen)) == (6, 2)


async def test_least_conn_returns_its_counts_when_requests_end(
    session: aiohttp.ClientSession, upstreams: list[FakeUpstream]
) -> None:
    first, second = upstreams
    gateway = gateway_config({})
    gateway["routes"][0]["upstream"] = {
        "type": "least_conn",
        "nodes": {f"127.0.0.1:{port_of(first)}": 1, f"127.0.0.1:{port_of(second)}": 1},
    }
    module = await served(session, gateway)
    for _ in range(4):
        await module.send(CHAT)
    # Sequential requests: each ends before the next, so both nodes stay at 0 and alternate.
    assert (len(first.seen), len(second.seen)) == (2, 2)


async def test_a_node_that_refuses_connections_is_retried_on_another(
    session: aiohttp.ClientSession, upstreams: list[FakeUpstream]
) -> None:
    live = upstreams[0]
    nodes = {f"127.0.0.1:{closed_port()}": 1, f"127.0.0.1:{port_of(live)}": 1}
    module = await served(session, gateway_config(nodes))  # retries default to nodes - 1
    for _ in range(4):
        assert (await module.send(CHAT))[0] == 200
    assert len(live.seen) == 4


async def test_without_retries_a_refused_node_is_a_502(session: aiohttp.ClientSession) -> None:
    gateway = gateway_config({f"127.0.0.1:{closed_port()}": 1, "127.0.0.1:1": 1})
    gateway["routes"][0]["upstream"]["retries"] = 0
    module = await served(session, gateway)
    with pytest.raises(UpstreamError):
        await module.send(CHAT)


async def test_a_node_that_saw_the_request_is_not_retried(
    session: aiohttp.ClientSession, upstreams: list[FakeUpstream]
) -> None:
    async def hang_up(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.close()
        return web.Response(body=CHAT_OK)

    first, second = upstreams
    first.handler = second.handler = hang_up
    nodes = {f"127.0.0.1:{port_of(first)}": 1, f"127.0.0.1:{port_of(second)}": 1}
    module = await served(session, gateway_config(nodes))
    with pytest.raises(UpstreamError):
        await module.send(CHAT)
    assert len(first.seen) + len(second.seen) == 1


async def test_streams_go_through_the_route(
    session: aiohttp.ClientSession, upstreams: list[FakeUpstream]
) -> None:
    fake = upstreams[0]
    events = (
        b'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,'
        b'"delta":{"content":"hi"}}]}\n\ndata: [DONE]\n\n'
    )
    fake.handler = streaming(*split(events))
    module = await served(
        session,
        gateway_config(
            {f"127.0.0.1:{port_of(fake)}": 1}, {"proxy-rewrite": {"uri": "/v1/chat/completions"}}
        ),
    )
    status, headers, body = await module.send({**CHAT, "stream": True})
    assert status == 200
    assert headers[b"content-type"].startswith(b"text/event-stream")
    assert body == events
    assert fake.seen[0].headers["accept"] == "text/event-stream"


# --- templates and ai-proxy ---------------------------------------------------------------------


async def test_a_prompt_template_is_filled_from_the_request(
    session: aiohttp.ClientSession, upstreams: list[FakeUpstream]
) -> None:
    fake = upstreams[0]
    module = await served(
        session,
        gateway_config({f"127.0.0.1:{port_of(fake)}": 1}, {"ai-prompt-template": TEMPLATE}),
    )
    request = {"template_name": "converter", "user_input": "data a; set b; run;", "stream": False}
    assert (await module.send(request))[0] == 200
    sent = orjson.loads(fake.seen[0].body)
    assert sent == {
        "model": "llama-3.1-8b-instant",
        "messages": [
            {"role": "system", "content": "Convert SAS to Python."},
            {"role": "user", "content": "data a; set b; run;"},
        ],
        "stream": False,
    }


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (CHAT, "template_name"),
        ({"template_name": "nope", "user_input": "x"}, "template_name"),
        ({"template_name": "converter"}, "user_input"),
        ({"template_name": 3}, "template_name"),
    ],
)
async def test_template_requests_are_checked(
    session: aiohttp.ClientSession, body: dict[str, Any], param: str
) -> None:
    module = await served(
        session, gateway_config({"127.0.0.1:1": 1}, {"ai-prompt-template": TEMPLATE})
    )
    with pytest.raises(BadRequest) as caught:
        await module.send(body)
    assert caught.value.param == param


async def test_ai_proxy_sends_to_its_endpoint_with_its_model_and_credentials(
    session: aiohttp.ClientSession, upstreams: list[FakeUpstream]
) -> None:
    fake = upstreams[0]
    gateway = gateway_config(
        {"127.0.0.1:1": 1},
        {
            "ai-proxy": {
                "provider": "openai-compatible",
                "auth": {"header": {"Authorization": "Bearer sk-ai"}, "query": {"sig": "abc"}},
                "options": {"model": "forced-model", "temperature": 0.1},
                "override": {"endpoint": fake.url("/llm/chat")},
            }
        },
    )
    module = await served(session, gateway)
    await module.send({"messages": [{"role": "user", "content": "x"}], "temperature": 1.5})
    seen = fake.seen[0]
    assert seen.path == "/llm/chat"
    assert seen.headers["authorization"] == "Bearer sk-ai"
    sent = orjson.loads(seen.body)
    assert (sent["model"], sent["temperature"]) == ("forced-model", 0.1)


# --- endpoints, set-up and what the module says about itself -------------------------------------


@pytest.mark.parametrize(
    ("path", "method"),
    [("/v1/completions", "POST"), ("/v1/embeddings", "POST"), ("/v1/models", "GET")],
)
async def test_only_chat_is_served_through_a_route(
    session: aiohttp.ClientSession, path: str, method: str
) -> None:
    module = await served(session, gateway_config({"127.0.0.1:1": 1}))
    with pytest.raises(NotFound) as caught:
        await module.send(None, path=path, method=method)
    assert "APISIX route 'convert'" in caught.value.message


async def test_unimplemented_plugins_are_logged_once_and_described(
    session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    gateway = gateway_config(
        {"127.0.0.1:1": 1},
        {"response-rewrite": {}, "cors": {}, "prometheus": {}},
    )
    with caplog.at_level(logging.INFO, "fd2.module.test"):
        module = await served(session, gateway)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "cors, response-rewrite" in warnings[0].getMessage()
    described = module.module.describe()["apisix"]
    assert described["gateway_module"] == GATEWAY
    assert described["route"] == "convert"
    assert described["unimplemented_plugins"] == ["cors", "response-rewrite"]


async def test_a_route_with_everything_applied_logs_no_warning(
    session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, "fd2.module.test"):
        await served(session, gateway_config({"127.0.0.1:1": 1}, {"prometheus": {}}))
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize(
    ("dependency", "expected"),
    [
        (ModuleDependency(name=GATEWAY, module_type="monitoring", config={}), "not an api_gateway"),
        (
            ModuleDependency(name=GATEWAY, module_type="api_gateway", config={}, problem="boom"),
            "boom",
        ),
        (
            ModuleDependency(name=GATEWAY, module_type="api_gateway", config={"routes": []}),
            "no route 'convert'",
        ),
    ],
)
async def test_a_gateway_that_cannot_serve_the_route_is_a_config_error(
    session: aiohttp.ClientSession, dependency: ModuleDependency, expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        await served(session, {}, dependency=dependency)
    assert expected in caught.value.message
    assert GATEWAY in caught.value.message


async def test_a_gateway_module_not_handed_over_is_a_config_error(
    session: aiohttp.ClientSession,
) -> None:
    module = Served(session, {}, config={"apisix_gateway_module": "elsewhere"})
    with pytest.raises(ConfigError, match="'elsewhere' was not handed"):
        await module.setup()


@pytest.mark.parametrize("field", ["apisix_route", "apisix_gateway_module"])
async def test_a_route_needs_both_fields(session: aiohttp.ClientSession, field: str) -> None:
    module = Served(session, gateway_config({"127.0.0.1:1": 1}), config={field: None})
    with pytest.raises(ConfigError, match="needs both"):
        await module.setup()


async def test_secrets_stay_out_of_logs_and_descriptions(
    session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    gateway = gateway_config(
        {"127.0.0.1:1": 1},
        {"proxy-rewrite": {"headers": {"Authorization": "Bearer gsk-hidden-777"}}, "cors": {}},
    )
    with caplog.at_level(logging.DEBUG):
        module = await served(session, gateway)
    assert "gsk-hidden-777" not in caplog.text
    assert "gsk-hidden-777" not in str(module.module.describe())


# --- endpoint_url that names one endpoint -------------------------------------------------------


async def test_an_endpoint_url_that_is_not_an_openai_path_is_used_exactly(
    session: aiohttp.ClientSession, upstreams: list[FakeUpstream]
) -> None:
    fake = upstreams[0]
    module = await served(
        session,
        {},
        config={
            "apisix_route": None,
            "apisix_gateway_module": None,
            "endpoint_url": fake.url("/sas2py/convert"),
        },
    )
    assert (await module.send(CHAT))[0] == 200
    assert fake.seen[0].path == "/sas2py/convert"
    assert module.module.describe() == {"endpoints": ["/v1/chat/completions"]}
    with pytest.raises(NotFound) as caught:
        await module.send({"model": "m", "input": "x"}, path="/v1/embeddings")
    assert "endpoint_url" in caught.value.message


async def test_an_openai_endpoint_url_serves_every_endpoint(
    session: aiohttp.ClientSession, upstreams: list[FakeUpstream]
) -> None:
    fake = upstreams[0]
    fake.handler = answer(200, b'{"object":"list","data":[]}')
    module = await served(
        session,
        {},
        config={
            "apisix_route": None,
            "apisix_gateway_module": None,
            "endpoint_url": fake.url("/v1/chat/completions"),
        },
    )
    await module.send(None, path="/v1/models", method="GET")
    await module.send({"model": "m", "input": "x"}, path="/v1/embeddings")
    assert [seen.path for seen in fake.seen] == ["/v1/models", "/v1/embeddings"]
    assert module.module.describe() == {}
