"""A module that estimates its requests but never reports what they used: the core must charge
it the estimate, never nothing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from fd2.metering import Meter
from fd2.module import Handler, Module, ModuleContext
from fd2.serving.request import Request
from fd2.serving.responses import send_bytes
from fd2.types import Send
from meter_probe.words import WordsMeter, prompt_words

PATH = "/v1/generate"


class Silent(Module):
    module_types: ClassVar[tuple[str, ...]] = ("silent_probe",)

    async def setup(self, context: ModuleContext) -> None:
        self._meter = WordsMeter()

    def endpoints(self) -> Mapping[str, Mapping[str, Handler]]:
        return {PATH: {"POST": self._generate}}

    def meters(self) -> Mapping[str, Meter]:
        return {PATH: self._meter}

    async def _generate(self, request: Request, send: Send) -> None:
        words = prompt_words(await request.json_object())
        await send_bytes(send, 200, b'{"text": "%d words heard"}' % words)
