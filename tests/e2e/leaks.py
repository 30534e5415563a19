"""The suite-wide leak check: no test secret in any fd2 log line or any answer fd2 gave.

The registry collects, for the whole session, the secret values the tests use, every log file of
the fd2 processes the tests start, and every response (head and body) received from a server the
tests started. `findings()` lists each place a secret value appears; the e2e conftest runs it when
the session ends and fails the run if it finds anything.

Stand-ins are servers of their own (Vault hands out secrets by design): only responses from and
logs of services whose name starts with `fd2` are checked. The OpenAI stand-in echoes the
Authorization header it received (its test aid, relayed by fd2 as upstream content); that echo is
taken out before checking, however many times it was quoted, and nothing else is.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class LeakRegistry:
    secrets: set[bytes] = field(default_factory=set)
    services: dict[int, str] = field(default_factory=dict)
    """Port → service name, for every server a test started."""
    logs: dict[str, list[Path]] = field(default_factory=dict)
    responses: list[tuple[str | None, str, bytes]] = field(default_factory=list)
    """(the service that answered, what, bytes) of every answer received. The service is
    named when the answer arrives: a port freed by one test's server and taken by another's
    later must not make the first one's answers look like the second one's."""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_secret(self, value: str | bytes) -> None:
        data = value.encode() if isinstance(value, str) else value
        if data:
            with self._lock:
                self.secrets.add(data)

    def add_service(self, name: str, port: int, log_files: list[Path]) -> None:
        with self._lock:
            self.services[port] = name
            self.logs.setdefault(name, []).extend(log_files)

    def record(self, port: int | None, what: str, data: bytes) -> None:
        if port is not None and data:
            with self._lock:
                self.responses.append((self.services.get(port), what, data))

    def forget(self, name: str, port: int) -> None:
        """`name` stopped: its port no longer names it (its logs stay checked)."""
        with self._lock:
            if self.services.get(port) == name:
                del self.services[port]

    def findings(self) -> list[str]:
        """Where a secret appears: `<place>: <secret's first characters>…`, one per finding."""
        found: list[str] = []
        echo = self._echo_pattern()
        for name, paths in sorted(self.logs.items()):
            if not _checked(name):
                continue
            for path in paths:
                text = path.read_bytes() if path.exists() else b""
                for number, line in enumerate(text.splitlines(), 1):
                    found += self._scan(line, f"{path.name} line {number}")
        for name, what, data in self.responses:
            if name is None or not _checked(name):
                continue
            found += self._scan(echo.sub(b"", data) if echo else data, f"{name} answer to {what}")
        return found

    def summary(self) -> str:
        checked = [name for name, _, _ in self.responses if name is not None and _checked(name)]
        files = sum(len(paths) for name, paths in self.logs.items() if _checked(name))
        return (
            f"{len(self.secrets)} secrets looked for in {len(checked)} recorded pieces of fd2 "
            f"answers and {files} fd2 log files"
        )

    def _scan(self, data: bytes, place: str) -> list[str]:
        return [
            f"{place}: contains {secret[:4].decode(errors='replace')}…"
            for secret in sorted(self.secrets)
            if secret in data
        ]

    def _echo_pattern(self) -> re.Pattern[bytes] | None:
        if not self.secrets:
            return None
        alternatives = b"|".join(re.escape(secret) for secret in sorted(self.secrets))
        # Any depth of JSON escaping: a workflow quotes an answer (the echo, escaped once) in its
        # next prompt, whose answer escapes it again.
        return re.compile(
            rb'(?:\\)*"authorization(?:\\)*":\s*(?:\\)*"Bearer (?:' + alternatives + rb')(?:\\)*"'
        )


def _checked(service_name: str) -> bool:
    return service_name.startswith("fd2")


LEAKS = LeakRegistry()
"""The session's registry (one pytest process, one registry)."""
