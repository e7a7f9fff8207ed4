"""Enqueueing from Python: validate, record as pending, publish.

Producers need none of this: any Celery client can send ``herald.send_message`` with
``kwargs={"job": {...}}``. A :class:`Producer` validates first, stamps ``enqueued_at``, and
records the job as *pending* in Redis before publishing it, so that a message the broker
loses (or a publish that fails) is published again by the reaper (:mod:`herald.store.reaper`;
docs/delivery.md#the-reaper-jobs-the-broker-lost). It holds one connection pool to Herald's
Redis: make one and keep it for many jobs; :func:`enqueue` makes one for a single call.
"""

from __future__ import annotations

import json
import uuid
from types import TracebackType
from typing import Any

from celery import Celery

from herald.config import Settings
from herald.contract.events import utc_stamp
from herald.contract.job import SendJob, parse_interaction, parse_job
from herald.contract.names import INTERACTION_TASK, SEND_TASK
from herald.store.connection import build_store
from herald.store.records import DeliveryStore

#: Connections a producer's pool may open to Herald's Redis.
PRODUCER_CONNECTIONS = 8


class Producer:
    """Enqueues Herald's tasks on ``app``, with the settings given (else ``HERALD_*``)."""

    def __init__(
        self,
        app: Celery,
        settings: Settings | None = None,
        *,
        store: DeliveryStore | None = None,
    ) -> None:
        self.app = app
        self.settings = settings or Settings()
        self._owns_store = store is None
        self.store = store or build_store(self.settings, max_connections=PRODUCER_CONNECTIONS)

    def enqueue(self, job: dict[str, Any] | SendJob, *, queue: str | None = None) -> str:
        """Validate ``job``, stamp ``enqueued_at``, record it as pending, publish it; return
        its job_id (a job without one gets the Celery task id as its job_id).

        Raises :class:`herald.contract.errors.InvalidJob` before anything is recorded or sent.
        """
        model = job if isinstance(job, SendJob) else parse_job(job)
        payload = model.model_dump(mode="json", exclude_unset=True)
        payload.setdefault("enqueued_at", utc_stamp())
        task_id = model.job_id or str(uuid.uuid4())
        payload["job_id"] = task_id
        self.store.pending.record(task_id, json.dumps(payload))
        self.app.send_task(
            SEND_TASK,
            kwargs={"job": payload},
            task_id=task_id,
            queue=queue or self.settings.queue,
            # Flower and logs show the job id only: the job may hold personal data.
            kwargsrepr=f"{{'job': <job {task_id}>}}",
        )
        return task_id

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


def enqueue(
    app: Celery,
    job: dict[str, Any] | SendJob,
    *,
    queue: str | None = None,
    store: DeliveryStore | None = None,
) -> str:
    """:meth:`Producer.enqueue` of one job, by a producer made for this call."""
    with Producer(app, store=store) as producer:
        return producer.enqueue(job, queue=queue)


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
