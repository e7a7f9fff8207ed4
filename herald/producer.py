"""Enqueueing from Python: a thin convenience over ``send_task``.

Producers need none of this: any Celery client can send ``herald.send_message`` with
``kwargs={"job": {...}}``. This module validates first and stamps ``enqueued_at``.
"""

from __future__ import annotations

import uuid
from typing import Any

from celery import Celery

from herald.config import Settings
from herald.constants import INTERACTION_TASK, SEND_TASK
from herald.events import utc_stamp
from herald.job import SendJob, parse_interaction, parse_job


def enqueue(app: Celery, job: dict[str, Any] | SendJob, *, queue: str | None = None) -> str:
    """Validate ``job``, stamp ``enqueued_at``, and enqueue it; return its job_id.

    A job without a ``job_id`` is known by its Celery task id, which is returned.
    Raises :class:`herald.errors.InvalidJob` before anything is sent.
    """
    model = job if isinstance(job, SendJob) else parse_job(job)
    payload = model.model_dump(mode="json", exclude_unset=True)
    payload.setdefault("enqueued_at", utc_stamp())
    task_id = model.job_id or str(uuid.uuid4())
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
