"""The token endpoint: `POST /{project}/{jwt module}/token` is passed to the JWT service.

A `jwt_config` module names the JWT service of each environment in `service_url`; clients get
their tokens through the front door, and the service's answer (status and body) comes back as
the service sent it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import ClassVar, Final

import aiohttp

from fd2.errors import ConfigError, UpstreamError, UpstreamTimeout
from fd2.module import Handler, Module, ModuleContext
from fd2.request import Request
from fd2.responses import send_bytes
from fd2.types import Send

_ANSWER_LIMIT: Final = 1024 * 1024
_FORWARDED: Final = (b"content-type", b"accept", b"x-request-id")


class JwtTokenModule(Module):
    module_types: ClassVar[tuple[str, ...]] = ("jwt_config",)
    secret_fields: ClassVar[frozenset[str]] = frozenset({"secret_key"})

    _url: str
    _http: aiohttp.ClientSession
    _timeout: aiohttp.ClientTimeout
    _logger: logging.Logger

    async def setup(self, context: ModuleContext) -> None:
        service = context.config.get("service_url")
        if not isinstance(service, str) or not service.startswith(("http://", "https://")):
            raise ConfigError("jwt_config.service_url must be an http(s) URL")
        self._url = service.rstrip("/") + "/token"
        self._http = context.http
        self._timeout = aiohttp.ClientTimeout(
            total=context.timeouts.total_s, sock_connect=context.timeouts.connect_s
        )
        self._logger = context.logger

    def endpoints(self) -> Mapping[str, Mapping[str, Handler]]:
        return {"/token": {"POST": self._token}}

    async def _token(self, request: Request, send: Send) -> None:
        body = await request.body()
        headers = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in request.scope["headers"]
            if name in _FORWARDED
        }
        try:
            async with self._http.post(
                self._url, data=body, headers=headers, timeout=self._timeout
            ) as response:
                answer = await response.content.read(_ANSWER_LIMIT + 1)
                status = response.status
                content_type = response.headers.get("content-type", "application/json")
        except TimeoutError:
            raise UpstreamTimeout("The JWT service did not answer in time.") from None
        except aiohttp.ClientError as exc:
            self._logger.warning(
                "request %s: JWT service: %s", request.request_id, type(exc).__name__
            )
            raise UpstreamError("The JWT service could not be reached.") from None
        except asyncio.CancelledError:
            raise
        if len(answer) > _ANSWER_LIMIT:
            raise UpstreamError("The JWT service's answer is too large.")
        await send_bytes(send, status, answer, content_type.encode("latin-1"))
