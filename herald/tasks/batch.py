"""``herald.send_batch``: hand the jobs of a batch to the send core, then ack."""

from __future__ import annotations

from typing import Any

from celery import Celery

from herald.contract.errors import InvalidJob
from herald.contract.names import BATCH_TASK
from herald.tasks.base import ContextSlot, HeraldTask, call_argument, call_as_given
from herald.tasks.context import WorkerContext
from herald.tasks.send import SENDING, Call, ConfigWait, end_when_expired, run_or_requeue


def register_send_batch(app: Celery, slot: ContextSlot) -> None:
    """Register the batch task on ``app``, and end with ``expired`` every job of a batch
    whose Celery ``expires`` passes before it runs."""
    config_wait = ConfigWait()

    @app.task(name=BATCH_TASK, slot=slot, **SENDING)  # type: ignore[untyped-decorator]
    def send_batch(self: HeraldTask, *args: Any, **kwargs: Any) -> None:
        """Send each job of the batch as if it had come alone (docs/contract.md#batches)."""
        batches = self.context.batches
        call = Call.of(self.request)
        try:
            jobs = call_argument(BATCH_TASK, "jobs", args, kwargs)
        except InvalidJob as exc:
            batches.refuse(call_as_given(args, kwargs), exc, task_id=call.task_id, queue=call.queue)
            return
        run_or_requeue(
            lambda: batches.send(
                jobs, task_id=call.task_id, queue=call.queue, expires=call.expires
            ),
            config_wait,
        )

    def expire(context: WorkerContext, jobs: Any, call: Call) -> None:
        context.batches.expire(jobs, task_id=call.task_id, queue=call.queue, expires=call.expires)

    end_when_expired(send_batch, slot, (BATCH_TASK, "jobs"), expire)
