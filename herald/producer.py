"""Enqueueing from Python: validate, record as pending, publish.

Producers need none of this: any Celery client can send ``herald.send_message`` with
``kwargs={"job": {...}}``. This module validates first, stamps ``enqueued_at``, and records
the job as *pending* in Redis before publishing it, so that a message the broker loses
(or a publish that fails) is published again by the reaper (:mod:`herald.store.reaper`;
docs/delivery.md#the-reaper-jobs-the-broker-lost).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from celery import Celery

from herald.config import Settings
from herald.contract.events import utc_stamp
from herald.contract.job import SendJob, parse_interaction, parse_job
from herald.contract.names import INTERACTION_TASK, SEND_TASK
from herald.store.connection import state_store
from herald.store.records import DeliveryStore


def enqueue(
    app: Celery,
    job: dict[str, Any] | SendJob,
    *,
    queue: str | None = None,
    store: DeliveryStore | None = None,
) -> str:
    """Validate ``job``, stamp ``enqueued_at``, record it as pending, publish it; return
    its job_id (a job without one gets the Celery task id as its job_id).

    Raises :class:`herald.contract.errors.InvalidJob` before anything is recorded or sent.
    """
    model = job if isinstance(job, SendJob) else parse_job(job)
    payload = model.model_dump(mode="json", exclude_unset=True)
    payload.setdefault("enqueued_at", utc_stamp())
    task_id = model.job_id or str(uuid.uuid4())
    payload["job_id"] = task_id
    (store or state_store()).pending.record(task_id, json.dumps(payload))
    app.send_task(
        SEND_TASK,
        kwargs={"job": payload},
        task_id=task_id,
        queue=queue or Settings().queue,
        # Flower and logs show the job id only: the job may hold personal data.
        kwargsrepr=f"{{'job': <job {task_id}>}}",
    )
    return task_id


def record_interaction(
    app: Celery, interaction: dict[str, Any], *, queue: str | None = None
) -> None:
    """Validate and enqueue ``herald.record_interaction``."""
    item = parse_interaction(interaction)
    app.send_task(
        INTERACTION_TASK,
        kwargs={"interaction": item.model_dump(mode="json")},
        queue=queue or Settings().queue,
        kwargsrepr="{'interaction': <interaction>}",
    )
