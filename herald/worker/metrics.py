"""Prometheus metrics of a worker, served on ``HERALD_METRICS_PORT`` (docs/operations.md#metrics).

Every name starts with ``herald_``. The send path reports to :class:`PrometheusObserver`
(the core's :class:`~herald.core.observe.Observer`); the queue's length is read from the
broker when Prometheus scrapes. With the prefork pool, each child counts in files under
``PROMETHEUS_MULTIPROC_DIR`` (the worker sets one before this module is imported) and the
main process serves their sum.

Import this module only when metrics are on: prometheus_client chooses its storage when it
is first imported.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import redis
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from herald.contract.events import OutcomeEvent
from herald.core.observe import Observer

#: Buckets of the provider latency and queue wait histograms, in seconds.
SECONDS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)

MESSAGES = Counter(
    "herald_messages_total",
    "Jobs ended, by channel type, outcome and error code ('' when sent).",
    ["channel_type", "outcome", "code"],
)
PROVIDER_SECONDS = Histogram(
    "herald_provider_request_seconds",
    "Time of one provider request, whatever its answer, by channel type.",
    ["channel_type"],
    buckets=SECONDS,
)
QUEUE_WAIT = Histogram(
    "herald_queue_wait_seconds",
    "From a job's enqueue (its enqueued_at) to the start of its first try.",
    buckets=SECONDS,
)
ATTEMPTS = Histogram(
    "herald_attempts",
    "Tries at the whole message of each job ended.",
    buckets=(0, 1, 2, 3, 4, 6, 8, 12, 20),
)
RETRIES = Counter("herald_retries_total", "Transient errors tried again, by code.", ["code"])
IN_DOUBT = Counter(
    "herald_in_doubt_total", "Requests made again that may have reached the provider."
)
RATE_WAIT = Histogram(
    "herald_rate_limit_wait_seconds",
    "Waits the fleet's rate limit asked for.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
IN_FLIGHT = Gauge(
    "herald_jobs_in_flight", "Jobs running in this worker.", multiprocess_mode="livesum"
)


class PrometheusObserver(Observer):
    """Counts what the send path reports."""

    def job_started(self, queue_wait_s: float | None) -> None:
        if queue_wait_s is not None:
            QUEUE_WAIT.observe(max(0.0, queue_wait_s))

    def job_finished(self, event: OutcomeEvent) -> None:
        data = event.data
        code = data.error.code if data.error else ""
        MESSAGES.labels(data.channel_type or "", data.outcome, code).inc()
        ATTEMPTS.observe(data.attempts)

    def in_flight(self, change: int) -> None:
        IN_FLIGHT.inc(change)

    def provider_call(self, channel_type: str, seconds: float) -> None:
        PROVIDER_SECONDS.labels(str(channel_type)).observe(seconds)

    def retry(self, code: str) -> None:
        RETRIES.labels(code).inc()

    def in_doubt(self) -> None:
        IN_DOUBT.inc()

    def rate_limit_wait(self, seconds: float) -> None:
        RATE_WAIT.observe(seconds)


class QueueLength(Collector):
    """``herald_queue_length{queue}``: messages waiting in each queue, read at scrape time
    from a Redis broker."""

    def __init__(self, broker: redis.Redis, queues: Sequence[str]) -> None:
        self.broker = broker
        self.queues = tuple(queues)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "herald_queue_length", "Messages waiting in the queue (Redis broker).", labels=["queue"]
        )
        for queue in self.queues:
            try:
                family.add_metric([queue], float(self.broker.llen(queue)))
            except redis.RedisError:
                continue  # a scrape during an outage shows no length, not an error
        yield family


def serve(port: int, bind: str, *, broker: redis.Redis | None, queues: Sequence[str]) -> None:
    """Serve the metrics (of every process of this worker) on ``bind:port``."""
    registry: CollectorRegistry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    if broker is not None:
        registry.register(QueueLength(broker, queues))
    start_http_server(port, addr=bind, registry=registry)
