"""The job machinery's figures for `GET /metrics`: this worker's counts (jobs it ended, by
status; webhook deliveries, by outcome; work it claimed from silent workers) and the shared
queues' depth, sampled every few seconds (a scrape never waits on Redis)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from fd2.jobs import keys


class JobCounters:
    def __init__(self) -> None:
        self.finished: Counter[str] = Counter()
        self.deliveries: Counter[str] = Counter()
        self.started = 0
        self.reclaimed = 0
        self.depth: dict[str, int] = {}

    async def sample(self, redis: Any) -> None:
        async with redis.pipeline(transaction=False) as pipe:
            pipe.xlen(keys.STREAM)
            pipe.zcard(keys.DELAYED)
            pipe.xlen(keys.DEAD)
            stream, delayed, dead = await pipe.execute()
        self.depth = {"stream": int(stream), "delayed": int(delayed), "dead": int(dead)}


class JobsCollector(Collector):
    def __init__(self, counters: JobCounters) -> None:
        self._counters = counters

    def collect(self) -> Iterator[Metric]:
        counters = self._counters
        finished = CounterMetricFamily(
            "fd2_jobs_finished", "Jobs this worker ended, by final status", labels=["status"]
        )
        for status, count in sorted(counters.finished.items()):
            finished.add_metric([status], count)
        yield finished
        started = CounterMetricFamily("fd2_jobs_started", "Job runs this worker began")
        started.add_metric([], counters.started)
        yield started
        reclaimed = CounterMetricFamily(
            "fd2_jobs_reclaimed", "Job work this worker claimed from a silent worker"
        )
        reclaimed.add_metric([], counters.reclaimed)
        yield reclaimed
        deliveries = CounterMetricFamily(
            "fd2_webhook_deliveries",
            "Webhook delivery attempts by this worker, by outcome",
            labels=["outcome"],
        )
        for outcome, count in sorted(counters.deliveries.items()):
            deliveries.add_metric([outcome], count)
        yield deliveries
        depth = GaugeMetricFamily(
            "fd2_jobs_queue_depth",
            "Work waiting in Redis (stream: to do now; delayed: retries; dead: dead letters)",
            labels=["queue"],
        )
        for queue, value in sorted(counters.depth.items()):
            depth.add_metric([queue], value)
        yield depth
