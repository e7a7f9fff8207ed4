"""``herald.send_message``: hand the payload to the pipeline, then ack or re-queue."""

from __future__ import annotations

import logging
from typing import Any

import redis
from celery import Celery
from celery.exceptions import Reject

from herald.contract.errors import ConfigError, InvalidJob
from herald.contract.names import SEND_TASK
from herald.core.pipeline import Pipeline, Step
from herald.core.retry import Requeue
from herald.tasks.base import ContextSlot, HeraldTask, call_argument, call_as_given

log = logging.getLogger("herald.tasks")


def _run(pipeline: Pipeline, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Step:
    """One run of the call: the job sent, or the call refused as ``invalid_job``."""
    try:
        job = call_argument(SEND_TASK, "job", args, kwargs)
    except InvalidJob as exc:
        return pipeline.refuse(call_as_given(args, kwargs), exc, task_id=task_id)
    return pipeline.send(job, task_id=task_id)


def _job_id(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    job = call_argument(SEND_TASK, "job", args, kwargs)
    given = job.get("job_id") if isinstance(job, dict) else None
    return given if isinstance(given, str) else None


def register_send_message(app: Celery, slot: ContextSlot) -> None:
    """Register the send task on ``app``."""

    @app.task(  # type: ignore[untyped-decorator]
        name=SEND_TASK,
        base=HeraldTask,
        slot=slot,
        shared=False,
        bind=True,
        acks_late=True,
        reject_on_worker_lost=True,
        ignore_result=True,
        max_retries=None,
    )
    def send_message(self: HeraldTask, *args: Any, **kwargs: Any) -> None:
        """Send one message; exactly one outcome event per job_id."""
        try:
            step = _run(self.context.pipeline, self.request.id, args, kwargs)
        except ConfigError as exc:
            # No context in this process: keep the job, say why loudly.
            log.critical("herald: %s; job left on the queue", exc)
            raise Reject(str(exc), requeue=True) from exc
        except redis.RedisError as exc:
            # Redis (state and broker) stayed unreachable: put the message back rather than
            # ack it. If even that fails, it stays unacked and returns after the
            # visibility timeout. The job's record makes the next run pick up safely.
            raise Reject(str(exc), requeue=True) from exc
        if isinstance(step, Requeue):
            # The new message shows the job by its id only, as Herald's producer does: its
            # content never reaches Flower, task events or logs.
            shown = f"<job {_job_id(args, kwargs) or self.request.id}>"
            raise self.retry(
                countdown=step.after,
                max_retries=None,
                argsrepr=f"({shown},)" if args else "()",
                kwargsrepr=f"{{'job': {shown}}}" if kwargs else "{}",
            )
