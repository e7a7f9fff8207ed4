"""Enqueueing from Python: validate, record as queued, publish.

Producers need none of this: any Celery client can send ``herald.send_message`` with
``kwargs={"job": {...}}``. A :class:`Producer` validates first, stamps ``enqueued_at``, and
records the job as *queued* in Redis before publishing it, so that a message the broker
loses (or a publish that fails) is published again by the sweeper (:mod:`herald.core.sweeper`;
docs/delivery.md#the-sweeper). It holds one connection pool to Herald's
Redis: make one and keep it for many jobs; :func:`enqueue` makes one for a single call.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import datetime
from types import TracebackType
from typing import Any

import redis
from celery import Celery

from herald.config import Settings
from herald.contract.errors import InvalidJob
from herald.contract.events import OutcomeEvent, utc_stamp
from herald.contract.job import SendJob, parse_interaction, parse_job
from herald.contract.names import BATCH_TASK, INTERACTION_TASK, SEND_TASK
from herald.store.connection import build_store, resolve_urls
from herald.store.keys import job_key
from herald.store.records import JobRecords
from herald.store.stream import wait_for_event

#: Jobs per ``herald.send_batch`` message that :func:`enqueue_many` makes by default.
DEFAULT_BATCH_SIZE = 100
#: Connections a producer's pool may open to Herald's Redis.
PRODUCER_CONNECTIONS = 8


class Producer:
    """Enqueues Herald's tasks on ``app``, with the settings given (else ``HERALD_*``)."""

    def __init__(
        self,
        app: Celery,
        settings: Settings | None = None,
        *,
        store: JobRecords | None = None,
    ) -> None:
        self.app = app
        self.settings = settings or Settings()
        self._owns_store = store is None
        self.store = store or build_store(self.settings, max_connections=PRODUCER_CONNECTIONS)

    def enqueue(self, job: dict[str, Any] | SendJob, *, queue: str | None = None) -> str:
        """Validate ``job``, stamp ``enqueued_at``, record it as queued, publish it; return
        its job_id (a job without one gets the Celery task id as its job_id).

        Raises :class:`herald.contract.errors.InvalidJob` before anything is recorded or sent.
        """
        payload = _payload(job)
        task_id = str(payload["job_id"])
        queue = queue or self.settings.queue
        self.store.record_queued(task_id, json.dumps(payload), queue=queue)
        self.app.send_task(
            SEND_TASK,
            kwargs={"job": payload},
            task_id=task_id,
            queue=queue,
            # Flower and logs show the job id only: the job may hold personal data.
            kwargsrepr=f"{{'job': <job {task_id}>}}",
        )
        return task_id

    def enqueue_many(
        self,
        jobs: Iterable[dict[str, Any] | SendJob],
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        queue: str | None = None,
    ) -> list[str]:
        """Validate every job first, then publish them as ``herald.send_batch`` messages of
        ``batch_size`` jobs on the bulk queue (``HERALD_BULK_QUEUE``); return their job_ids
        in order (a job without one gets a fresh id). Each job is recorded as queued, a
        batch in one round trip, before its message is published.

        Raises :class:`herald.contract.errors.InvalidJob`, naming the job's index, before
        anything is recorded or sent.
        """
        if not 1 <= batch_size <= self.settings.batch_max:
            raise ValueError(
                f"batch_size must be 1 to {self.settings.batch_max} (HERALD_BATCH_MAX)"
            )
        now = utc_stamp()
        payloads = [_indexed(index, job, now) for index, job in enumerate(jobs)]
        queue = queue or self.settings.bulk
        with self.app.producer_or_acquire() as publisher:
            for start in range(0, len(payloads), batch_size):
                batch = payloads[start : start + batch_size]
                self.store.record_queued_many(
                    [(p["job_id"], json.dumps(p)) for p in batch], queue=queue
                )
                self.app.send_task(
                    BATCH_TASK,
                    kwargs={"jobs": batch},
                    queue=queue,
                    producer=publisher,
                    kwargsrepr=f"{{'jobs': <{len(batch)} jobs>}}",
                )
        return [p["job_id"] for p in payloads]

    def record_interaction(self, interaction: dict[str, Any], *, queue: str | None = None) -> None:
        """Validate and enqueue ``herald.record_interaction``."""
        record_interaction(self.app, interaction, queue=queue or self.settings.queue)

    def close(self) -> None:
        """Close the connections this producer opened."""
        if self._owns_store:
            self.store.redis.close()

    def __enter__(self) -> Producer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


def _payload(job: dict[str, Any] | SendJob, now: str | None = None) -> dict[str, Any]:
    """A job as it is published: validated, with its job_id and its enqueue time (``now``,
    unless it has one)."""
    model = job if isinstance(job, SendJob) else parse_job(job)
    payload = model.model_dump(mode="json", exclude_unset=True)
    payload.setdefault("enqueued_at", now or utc_stamp())
    payload["job_id"] = model.job_id or str(uuid.uuid4())
    return payload


def _indexed(index: int, job: dict[str, Any] | SendJob, now: str) -> dict[str, Any]:
    """:func:`_payload` of the job at ``index`` of many, its index named if it is invalid."""
    try:
        return _payload(job, now)
    except InvalidJob as exc:
        raise InvalidJob(f"job {index}: {exc.message}") from None


def enqueue(
    app: Celery,
    job: dict[str, Any] | SendJob,
    *,
    queue: str | None = None,
    store: JobRecords | None = None,
) -> str:
    """:meth:`Producer.enqueue` of one job, by a producer made for this call."""
    with Producer(app, store=store) as producer:
        return producer.enqueue(job, queue=queue)


def enqueue_many(
    app: Celery,
    jobs: Iterable[dict[str, Any] | SendJob],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    queue: str | None = None,
    store: JobRecords | None = None,
) -> list[str]:
    """:meth:`Producer.enqueue_many`, by a producer made for this call."""
    with Producer(app, store=store) as producer:
        return producer.enqueue_many(jobs, batch_size=batch_size, queue=queue)


def record_interaction(
    app: Celery, interaction: dict[str, Any], *, queue: str | None = None
) -> None:
    """Validate and enqueue ``herald.record_interaction`` (no Redis connection is needed)."""
    item = parse_interaction(interaction)
    app.send_task(
        INTERACTION_TASK,
        kwargs={"interaction": item.model_dump(mode="json")},
        queue=queue or Settings().queue,
        kwargsrepr="{'interaction': <interaction>}",
    )


def wait_for_outcome(
    app_or_client: Celery | redis.Redis,
    job_id: str,
    timeout: float,
    *,
    after: str | datetime | None = None,
    stream: str | None = None,
) -> OutcomeEvent | None:
    """The outcome event of ``job_id``, waiting up to ``timeout`` seconds; None if none came.

    ``app_or_client`` is a Redis client of Herald's state Redis, or a Celery app (then
    ``HERALD_REDIS_URL``, else the app's broker when it is Redis). No event is missed,
    however early it was written: without ``after`` the job's record says whether it has
    finished (then its event is looked up); ``after`` reads from a stream id taken before
    enqueueing (:func:`herald.store.stream.last_id`) or from the enqueue time instead
    (docs/contract.md#waiting-for-one-outcome).
    """
    settings = Settings()
    name = stream or settings.events_stream
    key = job_key(job_id)
    if isinstance(app_or_client, redis.Redis):
        return wait_for_event(app_or_client, name, job_id, timeout, record_key=key, after=after)
    url = settings.redis_url or str(app_or_client.conf.broker_url or "")
    if not url.startswith(("redis://", "rediss://", "unix://")):
        url = resolve_urls(settings).redis
    # A socket timeout well past the reads' block, so a quiet stream is no error.
    client = redis.Redis.from_url(url, socket_timeout=30, socket_connect_timeout=5)
    try:
        return wait_for_event(client, name, job_id, timeout, record_key=key, after=after)
    finally:
        client.close()
