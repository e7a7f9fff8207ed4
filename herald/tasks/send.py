"""``herald.send_message``: hand the payload to the pipeline, then ack."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis
from celery import Celery
from celery.exceptions import Reject
from celery.signals import task_revoked

from herald.contract.errors import ConfigError, InvalidJob
from herald.contract.names import SEND_TASK
from herald.core.pipeline import Pipeline, Step
from herald.tasks.base import ContextSlot, HeraldTask, call_argument, call_as_given
from herald.tasks.context import WorkerContext

log = logging.getLogger("herald.tasks")

#: How long a job that met a configuration error waits before it goes back to the queue.
CONFIG_WAIT_S = 5.0
#: How often a configuration error is logged while jobs meet it.
CONFIG_LOG_EVERY_S = 60.0


@dataclass(frozen=True)
class Call:
    """What a task call says beyond its arguments: its id, queue and Celery ``expires``."""

    task_id: str
    queue: str | None
    expires: datetime | None

    @classmethod
    def of(cls, request: Any) -> Call:
        """The call of a Celery request (or of a revoked request's context)."""
        info = getattr(request, "delivery_info", None) or {}
        queue = info.get("routing_key") if isinstance(info, dict) else None
        return cls(str(request.id), queue or None, _time(getattr(request, "expires", None)))


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def _run(pipeline: Pipeline, call: Call, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Step:
    """One run of the call: the job sent, or the call refused as ``invalid_job``."""
    try:
        job = call_argument(SEND_TASK, "job", args, kwargs)
    except InvalidJob as exc:
        return pipeline.refuse(
            call_as_given(args, kwargs), exc, task_id=call.task_id, queue=call.queue
        )
    return pipeline.send(job, task_id=call.task_id, queue=call.queue, expires=call.expires)


class ConfigWait:
    """A job met a configuration error: it waits (never a hot loop), said once a minute."""

    def __init__(self) -> None:
        self._said = 0.0
        self._lock = threading.Lock()

    def __call__(self, exc: ConfigError) -> Reject:
        with self._lock:
            if time.monotonic() - self._said > CONFIG_LOG_EVERY_S:
                log.critical("herald: %s; jobs wait on the queue until it is mended", exc)
                self._said = time.monotonic()
        time.sleep(CONFIG_WAIT_S)
        return Reject(str(exc), requeue=True)


#: How Celery runs a task that sends: acked once it ran (a worker that dies mid-send leaves
#: the message to come back, and the jobs' records make the copy harmless), no result, no
#: Celery retries (retries wait in the job records).
SENDING: dict[str, Any] = {
    "base": HeraldTask,
    "shared": False,
    "bind": True,
    "acks_late": True,
    "reject_on_worker_lost": True,
    "ignore_result": True,
    "max_retries": None,
}


def run_or_requeue(run: Callable[[], object], config_wait: ConfigWait) -> None:
    """Run a task body; a configuration error waits, then the message goes back, and so
    does it when Redis (state and broker) stayed unreachable: rather than ack it. If even
    that fails, it stays unacked and returns after the visibility timeout; the jobs'
    records make the next run pick up safely."""
    try:
        run()
    except ConfigError as exc:
        raise config_wait(exc) from exc
    except redis.RedisError as exc:
        raise Reject(str(exc), requeue=True) from exc


def end_when_expired(
    task: Any,
    slot: ContextSlot,
    argument: tuple[str, str],
    end: Callable[[WorkerContext, Any, Call], object],
) -> None:
    """Have ``end`` write the outcomes of a call of ``task`` whose Celery ``expires``
    passes before it runs (Celery drops such a message without running it); ``end`` gets
    the call's ``argument`` (task name, argument name), or the call as given."""
    name, arg = argument

    def on_revoked(request: Any = None, expired: bool = False, **_: Any) -> None:
        if not expired or request is None or not slot.held_here():
            return
        call = Call.of(request)
        args, kwargs = tuple(request.args or ()), dict(request.kwargs or {})
        try:
            raw = call_argument(name, arg, args, kwargs)
        except InvalidJob:
            raw = call_as_given(args, kwargs)
        try:
            end(slot.get(), raw, call)
        except Exception:  # the consumer's thread: log, never raise
            log.exception("%s %s expired; its events could not be written", name, call.task_id)

    task_revoked.connect(on_revoked, sender=task, weak=False)


def register_send_message(app: Celery, slot: ContextSlot) -> None:
    """Register the send task on ``app``, and end with ``expired`` a job whose Celery
    ``expires`` passes before it runs (Celery drops such a message without running it)."""
    config_wait = ConfigWait()

    @app.task(name=SEND_TASK, slot=slot, **SENDING)  # type: ignore[untyped-decorator]
    def send_message(self: HeraldTask, *args: Any, **kwargs: Any) -> None:
        """Send one message; exactly one outcome event per job_id. A retry is scheduled in
        the job's record (the sweeper publishes it when due): this message is acked."""
        context, call = self.context, Call.of(self.request)
        run_or_requeue(lambda: _run(context.pipeline, call, args, kwargs), config_wait)

    def expire(context: WorkerContext, raw: Any, call: Call) -> None:
        context.pipeline.expire(raw, task_id=call.task_id, queue=call.queue, expires=call.expires)

    end_when_expired(send_message, slot, (SEND_TASK, "job"), expire)
