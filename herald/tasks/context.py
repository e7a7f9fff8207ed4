"""The worker context: everything a worker process needs to run Herald's tasks.

Built once per worker process when the process starts (:mod:`herald.worker.lifecycle`),
from the settings of the app, and reached by the tasks through their base class
(:class:`herald.tasks.base.HeraldTask`); a forked pool child builds its own. Nothing is
read from the environment or the configuration files after that: a broken file met at run
time cannot reach a job. Tests build contexts of their own with other settings.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from celery import Celery
from pydantic import ValidationError

from herald.adapters import build_adapters
from herald.config import Settings, load_channels
from herald.config.snippets import load_snippets
from herald.contract.errors import ConfigError
from herald.contract.names import SEND_TASK
from herald.core.batch import Batches
from herald.core.observe import Observer
from herald.core.pipeline import Pipeline
from herald.core.sweeper import Publish, Sweeper
from herald.files.library import Library, library_from_settings
from herald.store.connection import build_store, redis_client, resolve_urls
from herald.store.ratelimit import DEFAULT_RATE_LIMITS, ChannelRates, RateLimiter
from herald.store.records import JobRecords

#: Seconds between kombu's sweeps for messages of dead workers (its default is 100).
UNACKED_RESTORE_INTERVAL_S = 10


@dataclass(frozen=True)
class WorkerContext:
    """One worker process's objects: settings, job records, pipeline, batches (with their
    fan-out threads), limiter, sweeper."""

    settings: Settings
    store: JobRecords
    pipeline: Pipeline
    batches: Batches
    limiter: RateLimiter
    sweeper: Sweeper
    library: Library

    @classmethod
    def build(
        cls, settings: Settings, app: Celery, *, observer: Observer | None = None
    ) -> WorkerContext:
        """Read and check the configuration once, and build the process's objects from it
        (no connection is made yet); :class:`ConfigError` says what is unusable."""
        check_timezone(settings)
        channels = load_channels(settings.channels_file)
        library = library_from_settings(settings, max_connections=settings.worker_concurrency + 4)
        adapters = build_adapters(channels, settings, library)
        snippets = load_snippets(settings.snippets_file)
        # A connection for each slot and each fan-out thread at most (calls made at once
        # share round trips, so far fewer are open in practice).
        connections = settings.worker_concurrency + settings.batch_concurrency + 4
        store = build_store(settings, max_connections=connections)
        limiter = RateLimiter(store.redis, rate_limits(settings))
        pipeline = Pipeline(
            settings, channels, adapters, store, snippets, limiter, observer, library=library
        )
        fanout = ThreadPoolExecutor(settings.batch_concurrency, thread_name_prefix="herald-batch")
        batches = Batches(pipeline, fanout, batch_max=settings.batch_max)
        broker = resolve_urls(settings).broker
        redis_broker = broker.startswith(("redis://", "rediss://", "redis+socket://"))
        sweeper = Sweeper(
            store,
            publisher(app),
            queues=list(settings.consumed),
            redis_broker=redis_broker,
            broker=redis_client(broker, max_connections=2) if redis_broker else None,
        )
        return cls(settings, store, pipeline, batches, limiter, sweeper, library)

    def close(self) -> None:
        """Stop the sweeper and release the HTTP clients and Redis connections."""
        self.sweeper.stop()
        self.batches.fanout.shutdown(wait=True)
        if self.sweeper.broker is not None:
            self.sweeper.broker.close()
        for adapter in self.pipeline.adapters.values():
            adapter.close()
        self.store.redis.close()
        self.library.close()


def publisher(app: Celery) -> Publish:
    """How the sweeper publishes a job again: by task name on its queue, known by its key,
    with its Celery ``expires``, and shown by its id only (Flower, task events)."""

    def publish(job_id: str, job: dict[str, Any], queue: str, expires: datetime | None) -> None:
        app.send_task(
            SEND_TASK,
            kwargs={"job": job},
            queue=queue,
            task_id=job_id,
            expires=expires,
            kwargsrepr=f"{{'job': <job {job_id}>}}",
        )

    return publish


def rate_limits(settings: Settings) -> dict[str, ChannelRates]:
    """The providers' default limits with ``HERALD_RATE_LIMITS`` over them."""
    try:
        given = {k: ChannelRates.model_validate(v) for k, v in settings.rate_limits.items()}
    except ValidationError as exc:
        raise ConfigError(f"HERALD_RATE_LIMITS: {exc.errors()[0]['msg']}") from exc
    return {**DEFAULT_RATE_LIMITS, **given}


def check_timezone(settings: Settings) -> None:
    """``HERALD_TIMEZONE`` names a time zone this machine knows."""
    try:
        ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"HERALD_TIMEZONE: unknown time zone {settings.timezone!r}") from exc
