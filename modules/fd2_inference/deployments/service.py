"""An inference module's endpoints when its config declares `deployments`: the body's `model`
names an alias, the router picks its target, and the answer is relayed by the usual relays.

Answers carry `x-fd2-deployment` (the target that served them) and `x-fd2-attempts` (upstream
attempts made for the request, hedges included).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Final

import orjson

from fd2.metering import Meter
from fd2.module import Handler, ModuleContext
from fd2.serving.disconnect import cancel_on_disconnect
from fd2.serving.draining import drain_guard
from fd2.serving.errors import BadRequest
from fd2.serving.request import ClientDisconnected, Request
from fd2.serving.responses import send_bytes
from fd2.types import Message, Send
from fd2_inference.answers import shutting_down
from fd2_inference.deployments.client import SessionClient
from fd2_inference.deployments.config import load_deployments
from fd2_inference.deployments.relay import Opened, relay_tried
from fd2_inference.deployments.router import Outcome, Router
from fd2_inference.deployments.router_metrics import RouterMetrics
from fd2_inference.metering import (
    CHAT,
    COMPLETIONS,
    EMBEDDINGS,
    OpenAIMeter,
)
from fd2_inference.transforms import (
    Defaults,
    Prepared,
    prepare_chat,
    prepare_completion,
    prepare_embedding,
)

_Prepare = Callable[[dict[str, Any], Defaults], Prepared]
_KINDS: Final[dict[str, tuple[str, _Prepare]]] = {
    CHAT: ("/chat/completions", prepare_chat),
    COMPLETIONS: ("/completions", prepare_completion),
    EMBEDDINGS: ("/embeddings", prepare_embedding),
}
_PATHS: Final = {
    CHAT: "/v1/chat/completions",
    COMPLETIONS: "/v1/completions",
    EMBEDDINGS: "/v1/embeddings",
}


class DeployedEndpoints:
    """Chat completions, completions, embeddings and the alias list, over the deployments."""

    def __init__(self, context: ModuleContext, defaults: Defaults, max_tokens: int | None) -> None:
        spec, keys = load_deployments(context.config, context.references)
        self.router = Router(
            spec,
            keys,
            context.timeouts,
            SessionClient(context.http),
            RouterMetrics(context.metrics),
        )
        self._defaults = defaults
        self._logger = context.logger
        self._total_s = context.timeouts.total_s
        self._created = 0
        self._meters = {
            kind: OpenAIMeter(kind, partial(_prepared, prepare, defaults), max_tokens)
            for kind, (_, prepare) in _KINDS.items()
        }
        self._logger.info(
            "inference module %s/%s (%s): deployments %s",
            context.project,
            context.module,
            context.environment,
            ", ".join(
                f"{name} ({d.spec.strategy} over {len(d.targets)} targets)"
                for name, d in self.router.deployments.items()
            ),
        )

    def endpoints(self) -> dict[str, Mapping[str, Handler]]:
        return {
            _PATHS[CHAT]: {"POST": partial(self._handle, kind=CHAT)},
            _PATHS[COMPLETIONS]: {"POST": partial(self._handle, kind=COMPLETIONS)},
            _PATHS[EMBEDDINGS]: {"POST": partial(self._handle, kind=EMBEDDINGS)},
            "/v1/models": {"GET": self._models},
        }

    def meters(self) -> dict[str, Meter]:
        return {_PATHS[kind]: meter for kind, meter in self._meters.items()}

    def describe(self) -> dict[str, Any]:
        return self.router.describe()

    def aliases(self) -> tuple[str, ...]:
        return self.router.aliases()

    async def _models(self, request: Request, send: Send) -> None:
        """The aliases this caller may use (its identity's models, when it is limited)."""
        allowed = request.identity.models if request.identity is not None else None
        data = [
            {"id": alias, "object": "model", "created": self._created, "owned_by": "fd2"}
            for alias in self.router.aliases()
            if allowed is None or alias in allowed
        ]
        await send_bytes(send, 200, orjson.dumps({"object": "list", "data": data}))

    async def _handle(self, request: Request, send: Send, *, kind: str) -> None:
        try:
            await request.body()
            path, prepare = _KINDS[kind]
            prepared = prepare(await request.json_object(), self._defaults)
            model = prepared.payload.get("model")
            if not isinstance(model, str) or not model:
                raise BadRequest("The request names no model.", param="model")
            self.router.deployment(model)  # an unknown alias is a 404 before any work
            work = self._serve(request, send, kind, path, prepared, model)
            await cancel_on_disconnect(request, work)
        except ClientDisconnected:
            self._logger.debug("request %s: client disconnected", request.request_id)

    async def _serve(
        self, request: Request, send: Send, kind: str, path: str, prepared: Prepared, model: str
    ) -> None:
        rid, logger = request.request_id, self._logger
        with drain_guard() as guard:
            try:
                outcome = await self.router.run(
                    model,
                    path,
                    prepared.payload,
                    rid,
                    stream=prepared.stream,
                    original=None if prepared.changed else await request.body(),
                )
            except asyncio.CancelledError:
                if not guard.take_cut():
                    raise
                raise shutting_down() from None
        tried = outcome.tried
        logger.debug(
            "request %s: %s served by %s after %d attempts",
            rid,
            model,
            outcome.served_by,
            outcome.attempts,
        )
        if tried.cause is not None:
            logger.warning("request %s: every attempt failed (%d)", rid, outcome.attempts)
        try:
            await relay_tried(
                tried,
                request,
                _tagged(send, outcome),
                path=path,
                payload=prepared.payload,
                meter=self._meters[kind],
                chat=kind == CHAT,
                opened=Opened(tried.live, self.router.secrets, self._total_s),
                logger=logger,
            )
        finally:
            tried.close()
            used = request.usage
            if used is not None:
                tried.target.charge(used.prompt_tokens + used.completion_tokens)


def _tagged(send: Send, outcome: Outcome) -> Send:
    extra = [
        (b"x-fd2-deployment", outcome.served_by.encode("latin-1", "replace")),
        (b"x-fd2-attempts", str(outcome.attempts).encode()),
    ]

    async def tagged(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), *extra]
        await send(message)

    return tagged


def _prepared(prepare: _Prepare, defaults: Defaults, body: dict[str, Any]) -> Prepared:
    return prepare(body, defaults)
