"""The local manifest directory: the embedded default, re-read when a file in it changes.

A file that stops decoding keeps its last good version serving (and is reported once per change),
so a half-written or broken edit never takes a working module down.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from pathlib import Path

import msgspec

from fd2.errors import ConfigError
from fd2.manifests.compile import AnyManifest, content_digest, manifest_project
from fd2.manifests.decode import convert_manifest
from fd2.route_builder import RouteBuilder

_log = logging.getLogger("fd2.manifests.local")
_json_object = msgspec.json.Decoder(dict)

Snapshot = tuple[tuple[str, int, int], ...]


class _Loaded(msgspec.Struct, frozen=True):
    manifest: AnyManifest
    digest: str


class LocalDirectorySource:
    """Reads `*.json` manifests of either format from one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._good: dict[str, _Loaded] = {}
        self._reported: dict[str, tuple[int, int]] = {}

    def snapshot(self) -> Snapshot:
        """Names, modification times and sizes: cheap to take, and changes when a file does."""
        entries = []
        try:
            with os.scandir(self.directory) as scan:
                for entry in scan:
                    if entry.name.endswith(".json") and entry.is_file():
                        stat = entry.stat()
                        entries.append((entry.name, stat.st_mtime_ns, stat.st_size))
        except FileNotFoundError:
            return ()
        return tuple(sorted(entries))

    def load(self, snapshot: Snapshot) -> dict[str, list[tuple[str, AnyManifest, str]]]:
        """Projects → [(origin, manifest, digest)], from every file that decodes (or did)."""
        present = {name for name, _, _ in snapshot}
        for name in list(self._good):
            if name not in present:
                del self._good[name]
        for name, mtime, size in snapshot:
            loaded = self._read(name, (mtime, size))
            if loaded is not None:
                self._good[name] = loaded
        projects: dict[str, list[tuple[str, AnyManifest, str]]] = {}
        for name in sorted(self._good):
            loaded = self._good[name]
            projects.setdefault(manifest_project(loaded.manifest), []).append(
                (name, loaded.manifest, loaded.digest)
            )
        return projects

    def _read(self, name: str, stamp: tuple[int, int]) -> _Loaded | None:
        path = self.directory / name
        try:
            raw = _json_object.decode(path.read_bytes())
            manifest = convert_manifest(raw, origin=name)
        except (OSError, msgspec.DecodeError, ConfigError) as exc:
            if self._reported.get(name) != stamp:
                self._reported[name] = stamp
                detail = exc.message if isinstance(exc, ConfigError) else type(exc).__name__
                kept = "keeping its last good version" if name in self._good else "not served"
                _log.error("manifest file %s is invalid (%s); %s", name, detail, kept)
            return None
        return _Loaded(manifest, content_digest(raw))


class LocalDirectoryWatcher:
    """Keeps the route table in step with the directory, polling file stamps off the hot path."""

    def __init__(self, source: LocalDirectorySource, builder: RouteBuilder) -> None:
        self._source = source
        self._builder = builder
        self._last: Snapshot | None = None
        self._projects: set[str] = set()
        self.usable = False
        """The directory could be read at the last check (readiness)."""

    @property
    def projects(self) -> frozenset[str]:
        return frozenset(self._projects)

    async def sync(self) -> None:
        self.usable = await asyncio.to_thread(self._source.directory.is_dir)
        snapshot = await asyncio.to_thread(self._source.snapshot)
        if snapshot == self._last:
            return
        self._last = snapshot
        # Reading and decoding files runs in a thread: the event loop keeps serving meanwhile.
        projects = await asyncio.to_thread(self._source.load, snapshot)
        for project, files in projects.items():
            digest = hashlib.sha256(
                "\n".join(f"{origin}:{digest}" for origin, _, digest in files).encode()
            ).hexdigest()
            await self._builder.apply_project(
                project, [(origin, manifest) for origin, manifest, _ in files], digest
            )
        for project in self._projects - projects.keys():
            await self._builder.apply_project(project, None, "")
        self._projects = set(projects)

    async def run(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sync()
            except Exception as exc:  # keep watching whatever one pass hit
                _log.error("manifest directory sync failed: %s", type(exc).__name__)
