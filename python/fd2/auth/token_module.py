"""The token endpoint: `POST /{project}/{jwt module}/token` asks the JWT service for a token.

The client posts its login (`username`, `password`; `api_key` where the module allows it); fd2
sends the JWT service that login with an `api_key_config` built from the module's own config for
the environment being served (`token_contract.py`), and relays the service's answer: its token,
or its own `{"error": ...}` with its status.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, ClassVar, Final

import aiohttp

from fd2.auth.token_contract import (
    TokenSettings,
    check_service_answer,
    parse_login,
    service_request,
    token_settings,
)
from fd2.control.manifests.deferred import DeferredValue, DeferredValueError
from fd2.control.manifests.models import JWT_CONFIG_MODULE_TYPE
from fd2.module import Handler, Module, ModuleContext
from fd2.serving.errors import ConfigError, UpstreamError, UpstreamTimeout
from fd2.serving.request import Request
from fd2.serving.responses import JSON, send_bytes
from fd2.types import Send

_ANSWER_LIMIT: Final = 1024 * 1024
# Token answers are credentials: never kept by a cache between the client and fd2.
_NO_STORE: Final = ((b"cache-control", b"no-store"), (b"pragma", b"no-cache"))


class JwtTokenModule(Module):
    module_types: ClassVar[tuple[str, ...]] = (JWT_CONFIG_MODULE_TYPE,)
    secret_fields: ClassVar[frozenset[str]] = frozenset({"secret_key", "jwe_config.encryption_key"})

    _settings: TokenSettings
    _claims: Any
    _http: aiohttp.ClientSession
    _timeout: aiohttp.ClientTimeout
    _logger: logging.Logger

    async def setup(self, context: ModuleContext) -> None:
        self._settings = token_settings(
            context.config, project=context.project, environment=context.environment
        )
        self._claims = context.config.get("claims")
        self._http = context.http
        self._timeout = aiohttp.ClientTimeout(
            total=context.timeouts.total_s,
            sock_connect=context.timeouts.connect_s,
            sock_read=context.timeouts.read_s,
        )
        self._logger = context.logger

    def endpoints(self) -> Mapping[str, Mapping[str, Handler]]:
        return {"/token": {"POST": self._token}}

    async def _token(self, request: Request, send: Send) -> None:
        login = parse_login(await request.json_object(), self._settings)
        claims = await self._resolved_claims(request) if login.api_key is None else None
        body = service_request(login, self._settings, claims)
        request_id = request.request_id
        headers = {
            "content-type": "application/json",
            "accept": "application/json",
            "x-request-id": request_id,
        }
        try:
            async with self._http.post(
                self._settings.service_url, data=body, headers=headers, timeout=self._timeout
            ) as response:
                answer = await response.content.read(_ANSWER_LIMIT + 1)
                status = response.status
        except TimeoutError:
            raise UpstreamTimeout("The JWT service did not answer in time.") from None
        except aiohttp.ClientError as exc:
            self._logger.warning("request %s: JWT service: %s", request_id, type(exc).__name__)
            raise UpstreamError("The JWT service could not be reached.") from None
        except asyncio.CancelledError:
            raise
        if len(answer) > _ANSWER_LIMIT:
            raise UpstreamError("The JWT service's answer is too large.")
        try:
            check_service_answer(status, answer)
        except UpstreamError as exc:
            self._logger.warning("request %s: %s", request_id, exc.message)
            raise
        await send_bytes(send, status, answer, JSON, _NO_STORE)

    async def _resolved_claims(self, request: Request) -> Any:
        claims = self._claims
        if not isinstance(claims, DeferredValue):
            return claims
        try:
            # Off the event loop: a secret file or Vault may be read.
            return await asyncio.to_thread(claims.resolve)
        except DeferredValueError as exc:
            self._logger.error(
                "request %s: no token: %s cannot be resolved (%s)",
                request.request_id,
                exc.path,
                exc.reason,
            )
            raise ConfigError(
                f"The JWT module's claim {exc.path} cannot be resolved; no token can be issued."
            ) from None
