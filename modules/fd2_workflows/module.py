"""WorkflowModule: a `langgraph_workflow` manifest entry, run by fd2.

`POST /{project}/{module}/invoke` (also `POST /{project}/{module}`) takes the initial state (the
fields of `state_schema`) and answers the final state with the run's `metadata`. Asked with
`"stream": true` or `Accept: text/event-stream`, it streams one SSE event per node as it finishes,
then the final state, then `data: [DONE]`; an error after the stream has started is an `error`
event. `llm` nodes call their inference modules in process (fd2_workflows.llm).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Final

import orjson

from fd2.module import Handler, Module, ModuleContext
from fd2.serving.disconnect import cancel_on_disconnect
from fd2.serving.errors import BadRequest, Fd2Error
from fd2.serving.module_calls import ModuleHandle
from fd2.serving.request import ClientDisconnected, Request
from fd2.serving.responses import send_bytes
from fd2.types import Send
from fd2_workflows.config import WorkflowConfig, load_config
from fd2_workflows.errors import WorkflowTimeout
from fd2_workflows.executor import NodeDone, run_graph
from fd2_workflows.functions import Updates
from fd2_workflows.graph import Graph, compile_graph
from fd2_workflows.llm import HandleCaller
from fd2_workflows.sse import DONE, SSE_HEADERS, error_event, event
from fd2_workflows.state import STREAM, StateSchema

_CREDENTIALS: Final = (b"authorization", b"api-key", b"x-api-key")
_INTERNAL: Final = "The workflow failed; see the request id in the gateway logs."
"""The caller's credential goes with each model call: the inference route authorises it."""


class WorkflowModule(Module):
    module_types: ClassVar[tuple[str, ...]] = ("langgraph_workflow",)

    async def setup(self, context: ModuleContext) -> None:
        config = load_config(context.config)
        schema = StateSchema(config.state_schema)
        self._graph: Graph = compile_graph(config, schema, context.modules.keys())
        self._config: WorkflowConfig = config
        self._schema = schema
        self._modules: Mapping[str, ModuleHandle] = context.modules
        self._attempts = 1 + (config.max_retries if config.retry_on_error else 0)
        self._log: logging.Logger = context.logger
        self._runs = context.metrics.counter(
            "runs_total", "Workflow runs by outcome", labels=("outcome",)
        )

    def endpoints(self) -> Mapping[str, Mapping[str, Handler]]:
        return {"/invoke": {"POST": self._invoke}, "/": {"POST": self._invoke}}

    def describe(self) -> Mapping[str, Any]:
        return {
            "workflow_name": self._config.workflow_name,
            "workflow_type": self._config.workflow_type,
            "nodes": list(self._graph.nodes),
            "inference_modules": sorted(self._modules),
            "max_iterations": self._config.max_iterations,
            "timeout_seconds": self._config.timeout_seconds,
        }

    async def _invoke(self, request: Request, send: Send) -> None:
        body = await request.json_object()
        stream = body.get(STREAM, False)
        if not isinstance(stream, bool):
            raise BadRequest("'stream' must be true or false", param=STREAM)
        accept = request.header(b"accept") or b""
        stream = stream or b"text/event-stream" in accept
        state = self._schema.initial(body)
        forward = [(name, value) for name in _CREDENTIALS if (value := request.header(name))]
        caller = HandleCaller(
            self._modules,
            forward=forward,
            request_id=request.request_id,
            attempts=self._attempts,
        )
        if not stream:
            try:
                answer = await cancel_on_disconnect(request, self._run(state, caller, None))
            except Fd2Error as exc:
                self._runs.labels(outcome=exc.code or "error").inc()
                raise
            self._runs.labels(outcome="ok").inc()
            await send_bytes(send, 200, orjson.dumps(answer))
            return
        await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})

        async def on_node(step: int, node: str, updates: Updates) -> None:
            await _chunk(send, event("node", {"step": step, "node": node, "update": updates}))

        outcome = "ok"
        try:
            answer = await cancel_on_disconnect(request, self._run(state, caller, on_node))
            await _chunk(send, event("final", {"state": answer}))
        except Fd2Error as exc:
            outcome = exc.code or "error"
            await _chunk(send, error_event(exc))
        except ClientDisconnected:
            self._runs.labels(outcome="disconnected").inc()
            return
        except Exception as exc:
            # The response has started: end the stream with an error event rather than cut it.
            self._log.error("workflow run %s failed: %s", request.request_id, type(exc).__name__)
            outcome = "internal_error"
            await _chunk(send, error_event(Fd2Error(_INTERNAL)))
        self._runs.labels(outcome=outcome).inc()
        await send({"type": "http.response.body", "body": DONE, "more_body": False})

    async def _run(
        self, state: dict[str, Any], caller: HandleCaller, on_node: NodeDone | None
    ) -> dict[str, Any]:
        config = self._config
        started = _now()
        logged = self._logged(on_node) if config.log_intermediate_results else on_node
        try:
            async with asyncio.timeout(config.timeout_seconds) as limit:
                final, facts = await run_graph(
                    self._graph,
                    state,
                    call_model=caller,
                    max_iterations=config.max_iterations,
                    on_node=logged,
                )
        except TimeoutError:
            if not limit.expired():
                raise
            raise WorkflowTimeout(
                f"workflow {config.workflow_name!r} did not finish within "
                f"timeout_seconds ({config.timeout_seconds:g} s)"
            ) from None
        metadata = {
            "workflow_name": config.workflow_name,
            "started_at": started,
            "completed_at": _now(),
            **facts,
            "llm_calls": caller.calls,
        }
        return {**final, "metadata": metadata}

    def _logged(self, on_node: NodeDone | None) -> NodeDone:
        log, name = self._log, self._config.workflow_name

        async def logged(step: int, node: str, updates: Updates) -> None:
            # Names only: state values are the caller's data.
            log.info("workflow %s step %d: node %s wrote %s", name, step, node, sorted(updates))
            if on_node is not None:
                await on_node(step, node, updates)

        return logged


async def _chunk(send: Send, data: bytes) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": True})


def _now() -> str:
    return datetime.now(UTC).isoformat()
