"""Runs a stand-in's ASGI app under Granian (uvloop, HTTP/1.1, quiet logs) on loopback."""

from __future__ import annotations

from typing import Any


def serve(
    target: str,
    *,
    host: str,
    port: int,
    workers: int = 1,
    factory: bool = False,
    tls: dict[str, Any] | None = None,
) -> None:
    """`tls`: Granian's ssl_* arguments (certificate, key, client CA), for HTTPS stand-ins."""
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.log import LogLevels

    Granian(
        target,
        factory=factory,
        address=host,
        port=port,
        # No lifespan protocol: the stand-ins have nothing to set up or tear down.
        interface=Interfaces.ASGINL,
        workers=workers,
        loop=Loops.uvloop,
        http=HTTPModes.http1,
        websockets=False,
        log_level=LogLevels.warning,
        log_access=False,
        **(tls or {}),
    ).serve()
