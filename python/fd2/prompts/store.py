"""Prompts kept in Redis (the admin API writes them) and the notices that tell every replica.

Layout, per project:
  `fd2:prompt:<project>:<id>` a hash: `next` (the last version number given), `v:<n>` (version
      n, JSON, written once with HSETNX), `label:<name>` (a version number);
  `fd2:prompts:<project>` the set of its prompt ids.
Each change is published on `fd2:prompt-changes` as `{"project", "id"}`; replicas drop what they
cached of that prompt (`catalog.SharedPrompts`). The channel is apart from the manifests' own
(`fd2:manifest-changes`), on the same Redis, so neither reads the other's notices.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Final

import msgspec
import orjson
from redis.exceptions import RedisError

from fd2.prompts.compiled import CompiledVersion
from fd2.prompts.errors import PromptDefinitionError, PromptNotFound
from fd2.prompts.models import LABEL_PATTERN, LATEST, PromptVersion
from fd2.prompts.record import CompiledPrompt
from fd2.serving.errors import ServiceUnavailable

if TYPE_CHECKING:
    from redis.asyncio import Redis

CHANNEL: Final = "fd2:prompt-changes"
_PROMPT: Final = "fd2:prompt:"
_INDEX: Final = "fd2:prompts:"
_decode_version = msgspec.json.Decoder(PromptVersion)


def _key(project: str, prompt_id: str) -> str:
    return f"{_PROMPT}{project}:{prompt_id}"


class PromptStore:
    """CRUD over one Redis (every method raises ServiceUnavailable when Redis fails)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def _do(self, work: Any) -> Any:
        try:
            return await work
        except (RedisError, OSError):
            raise ServiceUnavailable(
                "The prompt store cannot be reached now (Redis).", code="prompt_store_unavailable"
            ) from None

    async def _notify(self, project: str, prompt_id: str) -> None:
        await self._do(
            self._redis.publish(CHANNEL, orjson.dumps({"project": project, "id": prompt_id}))
        )

    async def create_version(
        self, project: str, prompt_id: str, raw: Any, labels: list[str]
    ) -> dict[str, Any]:
        try:
            version = msgspec.convert(raw, PromptVersion)
        except msgspec.ValidationError as exc:
            raise PromptDefinitionError(f"The prompt version is invalid: {exc}") from None
        for label in labels:
            _check_label(label)
        # Refuses what cannot render before a version number is taken (numbers have no gaps).
        CompiledVersion(prompt_id, 0, version)
        key = _key(project, prompt_id)
        number = int(await self._do(self._redis.hincrby(key, "next", 1)))
        version = msgspec.structs.replace(version, created_at=int(time.time()))
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hsetnx(key, f"v:{number}", msgspec.json.encode(version))
            for label in labels:
                pipe.hset(key, f"label:{label}", number)
            pipe.sadd(_INDEX + project, prompt_id)
            await self._do(pipe.execute())
        await self._notify(project, prompt_id)
        return {"id": prompt_id, "version": number, "labels": labels}

    async def load(self, project: str, prompt_id: str) -> CompiledPrompt | None:
        fields: dict[bytes, bytes] = await self._do(self._redis.hgetall(_key(project, prompt_id)))
        versions: dict[int, CompiledVersion] = {}
        labels: dict[str, int] = {}
        for name, value in fields.items():
            text = name.decode()
            if text.startswith("v:"):
                number = int(text[2:])
                versions[number] = CompiledVersion(prompt_id, number, _decode_version.decode(value))
            elif text.startswith("label:"):
                labels[text[6:]] = int(value)
        if not versions:
            return None
        return CompiledPrompt(prompt_id, versions, labels)

    async def describe(self, project: str, prompt_id: str) -> dict[str, Any]:
        prompt = await self.load(project, prompt_id)
        if prompt is None:
            raise PromptNotFound(f"Prompt {prompt_id!r} does not exist.")
        return {
            "id": prompt_id,
            "object": "prompt",
            "latest": prompt.latest,
            "labels": prompt.labels,
            "versions": [
                {"version": n, **msgspec.to_builtins(v.source)}
                for n, v in sorted(prompt.versions.items())
            ],
        }

    async def list(self, project: str) -> list[str]:
        members = await self._do(self._redis.smembers(_INDEX + project))
        return sorted(m.decode() for m in members)

    async def set_label(
        self, project: str, prompt_id: str, label: str, number: int
    ) -> dict[str, Any]:
        _check_label(label)
        key = _key(project, prompt_id)
        if not await self._do(self._redis.hexists(key, f"v:{number}")):
            raise PromptNotFound(f"Prompt {prompt_id!r} has no version {number}.", param="version")
        await self._do(self._redis.hset(key, f"label:{label}", number))
        await self._notify(project, prompt_id)
        return {"id": prompt_id, "label": label, "version": number}

    async def delete_label(self, project: str, prompt_id: str, label: str) -> bool:
        removed = bool(await self._do(self._redis.hdel(_key(project, prompt_id), f"label:{label}")))
        await self._notify(project, prompt_id)
        return removed

    async def delete(self, project: str, prompt_id: str) -> bool:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(_key(project, prompt_id))
            pipe.srem(_INDEX + project, prompt_id)
            removed, _ = await self._do(pipe.execute())
        await self._notify(project, prompt_id)
        return bool(removed)


def _check_label(label: str) -> None:
    if not isinstance(label, str) or not LABEL_PATTERN.match(label) or label == LATEST:
        raise PromptDefinitionError(
            "A label is 1 to 64 lower-case letters, digits, '_' or '-' "
            "('latest' is always the highest version).",
            param="label",
        )
