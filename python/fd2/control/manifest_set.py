"""A set of manifests read once, for `fd2 check` and `fd2 routes`: from a directory (or one file),
as the gateway's directory source reads them, or from a Control Tower through its API."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Collection
from pathlib import Path
from typing import Any, Literal

import httpx
import msgspec

from fd2.config import Settings
from fd2.control.manifests.compile import AnyManifest
from fd2.control.manifests.decode import ManifestError, convert_manifest
from fd2.control.secrets import Secret, SecretResolver
from fd2.control.sources.control_tower_client import ControlTowerClient, ControlTowerUnavailable
from fd2.serving.errors import ConfigError

_json_object = msgspec.json.Decoder(dict[str, Any])
_listing = msgspec.json.Decoder(dict[str, Any])


class SourceError(Exception):
    """The source itself cannot be read (no such directory, Control Tower unreachable)."""


class ManifestFile(msgspec.Struct, kw_only=True):
    """One manifest as read: decoded, or why not."""

    origin: str
    raw: dict[str, Any] | None = None
    """The JSON as read (directory files; a Control Tower answer is decoded straight to a type)."""
    manifest: AnyManifest | None = None
    error: str | None = None


class ManifestSet(msgspec.Struct, kw_only=True):
    source: str
    kind: Literal["directory", "control-tower"]
    files: list[ManifestFile]


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def read_directory(path: Path, projects: Collection[str] = ()) -> ManifestSet:
    """Every `*.json` file of a directory (or the one file named), as the gateway reads them."""
    if path.is_dir():
        names = sorted(entry for entry in path.iterdir() if entry.suffix == ".json")
        paths = [entry for entry in names if entry.is_file()]
    elif path.is_file():
        paths = [path]
    else:
        raise SourceError(f"{path}: no such directory or file")
    files = []
    for file in paths:
        try:
            data = file.read_bytes()
        except OSError as exc:
            files.append(ManifestFile(origin=file.name, error=f"unreadable ({exc.strerror})"))
            continue
        read = _decode(data, file.name)
        if not projects or _project_of(read) in projects:
            files.append(read)
    return ManifestSet(source=str(path), kind="directory", files=files)


def read_control_tower(url: str, settings: Settings, projects: Collection[str] = ()) -> ManifestSet:
    """The manifests of `projects` (default: every project `GET /manifests` lists)."""
    return asyncio.run(_read_control_tower(url, settings, tuple(projects)))


async def _read_control_tower(
    url: str, settings: Settings, projects: tuple[str, ...]
) -> ManifestSet:
    secret = _client_secret(settings)
    try:
        client = ControlTowerClient(
            url,
            secret=secret,
            connect_timeout_s=settings.control_tower_connect_timeout,
            read_timeout_s=settings.control_tower_read_timeout,
            retries=settings.control_tower_retries,
            ca_bundle=settings.control_tower_ca,
        )
    except ConfigError as exc:
        raise SourceError(exc.message) from None
    try:
        names = projects or await _listed_projects(client.base_url, secret, settings)
        files = []
        for name in names:
            origin = f"{client.base_url}/manifests/{name}"
            try:
                answer = await client.fetch(name)
            except ControlTowerUnavailable as exc:
                raise SourceError(
                    f"{origin}: the Control Tower gave no usable answer ({exc})"
                ) from None
            except ManifestError as exc:  # decoded and validated by the client, as fd2 serves
                error = exc.message.removeprefix(f"control-tower:{name}: ")
                files.append(ManifestFile(origin=origin, error=error))
                continue
            if answer.manifest is None:
                files.append(
                    ManifestFile(origin=origin, error="the Control Tower has no such project (404)")
                )
            else:
                files.append(ManifestFile(origin=origin, manifest=answer.manifest))
    finally:
        await client.aclose()
    return ManifestSet(source=url, kind="control-tower", files=files)


async def _listed_projects(base_url: str, secret: Secret | None, settings: Settings) -> list[str]:
    """`GET /manifests`: `{"manifests": [{"project_id", ...}], "count": N}`."""
    headers = {"accept": "application/json", "user-agent": "fd2"}
    if secret is not None:
        headers["x-dspai-client-secret"] = secret.reveal()
    timeout = httpx.Timeout(
        settings.control_tower_read_timeout, connect=settings.control_tower_connect_timeout
    )
    verify: ssl.SSLContext | bool = True
    if settings.control_tower_ca:
        try:
            verify = ssl.create_default_context(cafile=settings.control_tower_ca)
        except (OSError, ssl.SSLError) as exc:
            problem = type(exc).__name__
            raise SourceError(f"--control-tower-ca: cannot be loaded ({problem})") from None
    try:
        async with httpx.AsyncClient(timeout=timeout, verify=verify, trust_env=False) as http:
            response = await http.get(f"{base_url}/manifests", headers=headers)
    except httpx.HTTPError as exc:
        raise SourceError(f"{base_url}/manifests: {type(exc).__name__}") from None
    if response.status_code != 200:
        raise SourceError(f"{base_url}/manifests: HTTP {response.status_code}")
    try:
        listing = _listing.decode(response.content)
        entries = listing["manifests"]
        return [str(entry["project_id"]) for entry in entries]
    except (msgspec.DecodeError, KeyError, TypeError):
        raise SourceError(f"{base_url}/manifests: not a manifest listing") from None


def _client_secret(settings: Settings) -> Secret | None:
    if not settings.control_tower_secret_ref:
        return None
    try:
        return SecretResolver(
            config_file=Path(settings.secrets_file) if settings.secrets_file else None
        ).resolve(settings.control_tower_secret_ref)
    except ConfigError as exc:
        raise SourceError(f"--control-tower-secret-ref: {exc.message}") from None


def _decode(data: bytes, origin: str) -> ManifestFile:
    try:
        raw = _json_object.decode(data)
    except msgspec.DecodeError as exc:
        return ManifestFile(origin=origin, error=f"not a JSON object ({exc})")
    return _converted(raw, origin)


def _converted(raw: dict[str, Any], origin: str) -> ManifestFile:
    try:
        return ManifestFile(origin=origin, raw=raw, manifest=convert_manifest(raw, origin=origin))
    except ConfigError as exc:
        # The decoder's message starts with the origin, which the report shows already.
        return ManifestFile(origin=origin, raw=raw, error=exc.message.removeprefix(f"{origin}: "))


def _project_of(read: ManifestFile) -> str | None:
    raw = read.raw or {}
    project = raw.get("project_id", raw.get("project"))
    return project if isinstance(project, str) else None
