"""The audit writer and its file sink: never waits, counts what it drops, rotates by size."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import orjson
import pytest

from fd2.audit.sinks import FileSink
from fd2.audit.writer import AuditWriter


class _Broken:
    name = "broken"

    async def write(self, records: list[bytes]) -> None:
        raise OSError("disk full")


class _Slow:
    name = "slow"

    def __init__(self) -> None:
        self.records: list[bytes] = []
        self.release = asyncio.Event()

    async def write(self, records: list[bytes]) -> None:
        await self.release.wait()
        self.records += records


async def test_file_sink_rotates_by_size(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    sink = FileSink(path, max_bytes=100, keep=2)
    for index in range(12):
        await sink.write([orjson.dumps({"n": index, "pad": "x" * 20})])
    check_rotated(tmp_path, path)


def check_rotated(directory: Path, path: Path) -> None:
    files = sorted(p.name for p in directory.iterdir())
    assert files == ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2"]
    for name in files:
        text = (directory / name).read_text()
        assert len(text.encode()) <= 100
        assert all(orjson.loads(line)["pad"] for line in text.splitlines())
    assert path.stat().st_mode & 0o777 == 0o600


async def test_a_full_queue_drops_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    slow = _Slow()
    writer = AuditWriter([slow], queue_size=3)
    task = asyncio.create_task(writer.run())
    await asyncio.sleep(0)
    with caplog.at_level(logging.WARNING, logger="fd2.audit"):
        for index in range(10):
            writer.submit(b"%d" % index)  # never waits
    assert [r.message for r in caplog.records].count(
        "audit: the queue is full (3 records); records dropped"
    ) == 1
    slow.release.set()
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert 3 <= len(slow.records) <= 4


async def test_a_failing_sink_loses_its_batch_not_the_others(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    writer = AuditWriter([_Broken(), FileSink(path, max_bytes=10_000, keep=1)])
    task = asyncio.create_task(writer.run())
    writer.submit(b'{"a":1}')
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert path.read_text() == '{"a":1}\n'


async def test_records_queued_at_shutdown_are_written(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    writer = AuditWriter([FileSink(path, max_bytes=10_000, keep=1)])
    task = asyncio.create_task(writer.run())
    await asyncio.sleep(0)  # waiting for the first record
    for index in range(5):
        writer.submit(b"%d" % index)
    task.cancel()  # before it could take them
    with pytest.raises(asyncio.CancelledError):
        await task
    assert path.read_text().split() == ["0", "1", "2", "3", "4"]
