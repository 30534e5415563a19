"""The local manifest directory: the embedded default, re-read when a file in it changes.

A file that stops decoding keeps its last good version serving (and is reported once per change),
so a half-written or broken edit never takes a working module down. Projects found here are
served from here (the runtime asks this source first).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import msgspec

from fd2.control.manifests.compile import AnyManifest, content_digest, manifest_project
from fd2.control.manifests.decode import convert_manifest
from fd2.control.route_builder import RouteBuilder
from fd2.serving.errors import ConfigError

if TYPE_CHECKING:
    from prometheus_client.core import Metric

    from fd2.control.tasks import Supervisor

_log = logging.getLogger("fd2.manifests.local")
_json_object = msgspec.json.Decoder(dict)

Snapshot = tuple[tuple[str, int, int], ...]


class _Loaded(msgspec.Struct, frozen=True):
    manifest: AnyManifest
    digest: str
    may_block: bool | None
    """False: the file's text names no secret file, Vault or encrypted reference, so resolving
    its manifest never blocks; None: not known from the text (`RouteBuilder` looks)."""


_YIELD_EVERY: Final = 64
"""Files a snapshot stats between two yields of the core (~0.2 ms of work; 1,000 files ~3 ms)."""


class ManifestDirectory:
    """Reads `*.json` manifests of either format from one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._good: dict[str, _Loaded] = {}
        self._stamps: dict[str, tuple[int, int]] = {}
        """(mtime, size) each good file was read at: an unchanged file is not read again."""
        self._reported: dict[str, tuple[int, int]] = {}
        self._project_of: dict[str, str] = {}
        """The project each good file declares."""
        self._names: dict[str, set[str]] = {}
        """The good files of each project."""

    def snapshot(self) -> Snapshot:
        """Names, modification times and sizes: cheap to take, and changes when a file does."""
        entries = []
        try:
            with os.scandir(self.directory) as scan:
                for count, entry in enumerate(scan, 1):
                    if not count % _YIELD_EVERY:
                        # Runs in a thread beside the worker's; under --cpu-scheduling batch
                        # Granian's threads do not preempt it, so it makes way for them.
                        os.sched_yield()
                    if entry.name.endswith(".json") and entry.is_file():
                        stat = entry.stat()
                        entries.append((entry.name, stat.st_mtime_ns, stat.st_size))
        except FileNotFoundError:
            return ()
        return tuple(sorted(entries))

    def load(
        self, snapshot: Snapshot
    ) -> tuple[dict[str, list[tuple[str, AnyManifest, str, bool | None]]], set[str]]:
        """(projects → [(origin, manifest, digest, may block)] for each project a changed, added
        or removed file belongs (or belonged) to; every project served). Only changed files are
        read, and only their projects listed: one file changed among thousands costs one file's
        work. "May block": `_may_block` of the file's text."""
        present = {name for name, _, _ in snapshot}
        touched: set[str] = set()
        for name in list(self._good):
            if name not in present:
                del self._good[name]
                self._stamps.pop(name, None)
                self._forget(name, touched)
        for name, mtime, size in snapshot:
            stamp = (mtime, size)
            if self._stamps.get(name) == stamp and name in self._good:
                continue  # one file changed among thousands: only it is read and decoded again
            loaded = self._read(name, stamp)
            if loaded is not None:
                self._good[name] = loaded
                self._stamps[name] = stamp
                self._forget(name, touched)
                project = manifest_project(loaded.manifest)
                self._project_of[name] = project
                self._names.setdefault(project, set()).add(name)
                touched.add(project)
        changed = {
            project: [
                (name, loaded.manifest, loaded.digest, loaded.may_block)
                for name in sorted(self._names[project])
                for loaded in (self._good[name],)
            ]
            for project in touched
            if project in self._names
        }
        return changed, set(self._names)

    def _forget(self, name: str, touched: set[str]) -> None:
        """`name` no longer counts for the project it belonged to (which is then touched)."""
        project = self._project_of.pop(name, None)
        if project is None:
            return
        touched.add(project)
        names = self._names[project]
        names.discard(name)
        if not names:
            del self._names[project]

    def _read(self, name: str, stamp: tuple[int, int]) -> _Loaded | None:
        try:
            data = _read_bytes(os.path.join(self.directory, name))
            raw = _json_object.decode(data)
            manifest = convert_manifest(raw, origin=name)
        except (OSError, msgspec.DecodeError, ConfigError) as exc:
            if self._reported.get(name) != stamp:
                self._reported[name] = stamp
                detail = exc.message if isinstance(exc, ConfigError) else type(exc).__name__
                kept = "keeping its last good version" if name in self._good else "not served"
                _log.error("manifest file %s is invalid (%s); %s", name, detail, kept)
            return None
        return _Loaded(manifest, content_digest(raw), _may_block(data))


def _may_block(data: bytes) -> bool | None:
    """False when a manifest file's text names no reference that resolving may block on (a
    secret file, Vault, an encrypted value), searched in the bytes read: cheaper than the
    builder's search of the decoded manifest, encoded again. Only a `\\u` escape can spell
    such a scheme's letters or colon otherwise, so with one the answer is None (not known)."""
    if b"\\u" in data:
        return None
    if b"file:" in data or b"vault:" in data or b"config:" in data or b"encrypted:" in data:
        return None  # the builder looks again, at what was decoded
    return False


def _read_bytes(path: str) -> bytes:
    """A file's bytes, through the OS calls alone: `Path.read_bytes` builds a buffered file
    object per file, twice the cost of the read at start-up's thousands of small files."""
    fd = os.open(path, os.O_RDONLY)  # not inherited (PEP 446), as `open` makes it
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class LocalDirectorySource:
    """The directory as a `ManifestSource`: keeps the route table in step with its files,
    polling their stamps off the hot path."""

    kind = "directory"
    view_key = "manifest_directory"

    def __init__(self, directory: Path, builder: RouteBuilder, *, poll_s: float = 1.0) -> None:
        self._files = ManifestDirectory(directory)
        self._builder = builder
        self._poll_s = poll_s
        self._last: Snapshot | None = None
        self._projects: set[str] = set()
        self._usable = False
        """The directory could be read at the last check (readiness)."""

    @property
    def directory(self) -> Path:
        return self._files.directory

    @property
    def projects(self) -> frozenset[str]:
        return frozenset(self._projects)

    async def start(self, tasks: Supervisor) -> None:
        if not await asyncio.to_thread(self.directory.is_dir):
            raise ConfigError(f"--manifests {self.directory} is not a directory")
        await self.sync()
        tasks.every("manifest directory", self._poll_s, self.sync)

    async def sync(self) -> None:
        self._usable = await asyncio.to_thread(self.directory.is_dir)
        snapshot = await asyncio.to_thread(self._files.snapshot)
        if snapshot == self._last:
            return
        self._last = snapshot
        # Reading and decoding files runs in a thread: the event loop keeps serving meanwhile.
        changed, served = await asyncio.to_thread(self._files.load, snapshot)
        for project, files in sorted(changed.items()):
            digest = hashlib.sha256(
                "\n".join(f"{origin}:{digest}" for origin, _, digest, _ in files).encode()
            ).hexdigest()
            quiet = all(may_block is False for *_, may_block in files)
            await self._builder.apply_project(
                project,
                [(origin, manifest) for origin, manifest, _, _ in files],
                digest,
                may_block=False if quiet else None,
            )
        for project in self._projects - served:
            await self._builder.apply_project(project, None, "")
        self._projects = served

    # -- ManifestSource ---------------------------------------------------------------------

    def usable(self) -> bool:
        return self._usable

    def serves(self, project: str) -> bool:
        return project in self._projects

    async def lookup(self, project: str) -> None:
        return None  # every file is loaded up front: there is nothing to look up

    async def refresh(self, project: str) -> Mapping[str, object] | None:
        if project not in self._projects:
            return None
        await self.sync()
        return {"project": project, "source": self.kind, "digest": self._builder.digest(project)}

    def describe(self) -> Mapping[str, Any]:
        return {"path": str(self.directory), "usable": self._usable}

    def describe_project(self, project: str) -> Mapping[str, Any]:
        return {}

    def failing(self, served: AbstractSet[str]) -> Iterable[Mapping[str, Any]]:
        return ()

    def metric_families(self) -> Iterable[Metric]:
        return ()

    async def aclose(self) -> None:
        return None
