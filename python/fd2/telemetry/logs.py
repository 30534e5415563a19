"""Logging set-up: one line per record, and a redactor so no secret value reaches a log line."""

from __future__ import annotations

import logging
import sys
import threading

import orjson

from fd2.telemetry.log_context import REQUEST_ID, TRACE_ID

_MIN_SECRET_LENGTH = 4
_secret_values: set[str] = set()
_lock = threading.Lock()


def register_secret_value(value: str) -> None:
    """Remember a revealed secret so the redactor masks it wherever it would be logged."""
    if len(value) >= _MIN_SECRET_LENGTH:
        with _lock:
            _secret_values.add(value)


_MIN_ENVIRONMENT_VALUE_LENGTH = 8


def register_environment_value(value: str) -> None:
    """Mask a value a manifest placeholder read from the process environment, as a secret.

    Shorter values are left alone: masking `true` or `dev` would blank unrelated words in every
    line, and a value that short is no credential."""
    if len(value) >= _MIN_ENVIRONMENT_VALUE_LENGTH:
        register_secret_value(value)


def redact(text: str) -> str:
    for value in _secret_values:
        if value in text:
            text = text.replace(value, "***")
    return text


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        # Tracebacks stay out of log lines: keep the exception's type, drop the stack.
        if record.exc_info:
            exc = record.exc_info[1]
            record.msg = f"{record.getMessage()} [{type(exc).__name__}]"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return _one_line(redact(super().format(record)))


# One record, one line: client-supplied text (a model name, a path) must not forge log lines or
# write terminal control bytes, whichever log call it reaches.
_CONTROL = {code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F)}


def _one_line(text: str) -> str:
    return text.translate(_CONTROL) if not text.isprintable() else text


class _JsonFormatter(_RedactingFormatter):
    """One JSON object per line: time, level, logger, pid, message, and the request id and
    trace id of the request the line is about (null outside a request)."""

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)  # redacted, one line, no stack
        return orjson.dumps(
            {
                "time": self.formatTime(record),
                "level": record.levelname,
                "logger": record.name,
                "pid": record.process,
                "message": message,
                "request_id": REQUEST_ID.get(),
                "trace_id": TRACE_ID.get(),
            }
        ).decode()


def configure_logging(level: str = "INFO", log_format: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(_JsonFormatter("%(message)s"))
    else:
        handler.setFormatter(
            _RedactingFormatter("%(asctime)s %(levelname)s %(name)s [pid %(process)d] %(message)s")
        )
    root = logging.getLogger("fd2")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
    modules_root = logging.getLogger("fd2.module")
    modules_root.setLevel(level.upper())
