"""``herald.send_batch``: hand the jobs of a batch to the send core, then ack."""

from __future__ import annotations

import logging
from typing import Any

import redis
from celery import Celery
from celery.exceptions import Reject
from celery.signals import task_revoked

from herald.contract.errors import ConfigError, InvalidJob
from herald.contract.names import BATCH_TASK
from herald.tasks.base import ContextSlot, HeraldTask, call_argument, call_as_given
from herald.tasks.send import Call, ConfigWait

log = logging.getLogger("herald.tasks")


def register_send_batch(app: Celery, slot: ContextSlot) -> None:
    """Register the batch task on ``app``, and end with ``expired`` every job of a batch
    whose Celery ``expires`` passes before it runs."""
    config_wait = ConfigWait()

    @app.task(  # type: ignore[untyped-decorator]
        name=BATCH_TASK,
        base=HeraldTask,
        slot=slot,
        shared=False,
        bind=True,
        acks_late=True,
        reject_on_worker_lost=True,
        ignore_result=True,
        max_retries=None,
    )
    def send_batch(self: HeraldTask, *args: Any, **kwargs: Any) -> None:
        """Send each job of the batch as if it had come alone (docs/contract.md#batches)."""
        batches = self.context.batches
        call = Call.of(self.request)
        try:
            jobs = call_argument(BATCH_TASK, "jobs", args, kwargs)
        except InvalidJob as exc:
            batches.refuse(call_as_given(args, kwargs), exc, task_id=call.task_id, queue=call.queue)
            return
        try:
            batches.send(jobs, task_id=call.task_id, queue=call.queue, expires=call.expires)
        except ConfigError as exc:
            raise config_wait(exc) from exc
        except redis.RedisError as exc:
            # As for a single job: the message goes back; the jobs that ended stay ended.
            raise Reject(str(exc), requeue=True) from exc

    def on_revoked(request: Any = None, expired: bool = False, **_: Any) -> None:
        if not expired or request is None or not slot.held_here():
            return
        call = Call.of(request)
        args, kwargs = tuple(request.args or ()), dict(request.kwargs or {})
        try:
            jobs = call_argument(BATCH_TASK, "jobs", args, kwargs)
        except InvalidJob:
            jobs = call_as_given(args, kwargs)
        try:
            slot.get().batches.expire(
                jobs, task_id=call.task_id, queue=call.queue, expires=call.expires
            )
        except Exception:  # the consumer's thread: log, never raise
            log.exception("batch %s expired; its events could not be written", call.task_id)

    task_revoked.connect(on_revoked, sender=send_batch, weak=False)
