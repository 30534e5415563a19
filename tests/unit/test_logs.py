"""Log lines: one record is one line, whatever text a client managed to put into it."""

import io
import logging

from fd2.telemetry.logs import configure_logging


def test_control_characters_from_clients_cannot_forge_lines():
    configure_logging("info")
    logger = logging.getLogger("fd2.test.forging")
    stream = io.StringIO()
    handler = logging.getLogger("fd2").handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    previous = handler.setStream(stream)
    try:
        logger.info("model=%s", "gpt\n2026-11-29 INFO fd2 forged line\x00\x1b[31m")
    finally:
        handler.setStream(previous)
    written = stream.getvalue()
    assert written.count("\n") == 1
    assert "\\x0a" in written and "\\x00" in written and "\\x1b" in written
