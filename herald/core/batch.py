"""Batches: many jobs in one queue message, each sent exactly as if it came alone.

``herald.send_batch`` carries up to ``HERALD_BATCH_MAX`` jobs (docs/contract.md#batches).
Each job goes through :meth:`herald.core.pipeline.Pipeline.send` on its own, so it keeps
every rule of a single job: its channel, window, idempotency by ``job_id``, retries (a
job to retry is scheduled in its own record and published again alone) and exactly one
outcome event. The jobs of a batch run at once on the process's fan-out threads, so their
claims and finishes travel to Redis together (:mod:`herald.store.coalesce`) and one slow
provider call holds back no other job. A job without a ``job_id`` is known as
``<task id>:<index>``.

A worker killed mid-batch loses nothing: each job the batch has claimed has its record
(the sweeper publishes it again if it was cut off), and the batch message, not acked,
comes back; its finished jobs are then "done" and only the others are sent.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import Executor
from datetime import datetime
from typing import Any

from herald.contract.errors import ConfigError, InvalidJob
from herald.contract.names import BATCH_TASK
from herald.core.pipeline import Finished, Pipeline, Step

log = logging.getLogger("herald.batch")


class Batches:
    """Sends batches through a pipeline, the jobs of each at once on ``fanout``."""

    def __init__(self, pipeline: Pipeline, fanout: Executor, *, batch_max: int) -> None:
        self.pipeline = pipeline
        self.fanout = fanout
        self.batch_max = batch_max

    def check(self, jobs: Any) -> list[Any]:
        """The jobs of a ``jobs`` argument; :class:`InvalidJob` when it is not a batch."""
        if not isinstance(jobs, list):
            raise InvalidJob(f"{BATCH_TASK}: jobs must be a JSON array of send jobs")
        if not jobs:
            raise InvalidJob(f"{BATCH_TASK}: jobs is empty")
        if len(jobs) > self.batch_max:
            raise InvalidJob(
                f"{BATCH_TASK}: {len(jobs)} jobs; the limit is {self.batch_max} (HERALD_BATCH_MAX)"
            )
        return jobs

    def send(
        self,
        jobs: Any,
        *,
        task_id: str,
        queue: str | None = None,
        expires: datetime | None = None,
    ) -> list[Step]:
        """Send every job of the batch; a batch that is not one ends as one ``invalid_job``.

        Raises what a job met that stops the whole message (a configuration error, Redis
        unreachable) once every job has run: the message then comes back, and the jobs
        that ended stay ended.
        """
        try:
            batch = self.check(jobs)
        except InvalidJob as exc:
            return [self.refuse(jobs, exc, task_id=task_id, queue=queue)]
        futures = [
            self.fanout.submit(
                self.pipeline.send, raw, task_id=f"{task_id}:{i}", queue=queue, expires=expires
            )
            for i, raw in enumerate(batch)
        ]
        steps: list[Step] = []
        stop: BaseException | None = None
        for future in futures:
            try:
                steps.append(future.result())
            except Exception as exc:  # each job ends or is scheduled on its own; see below
                stop = _first(stop, exc)
        if stop is not None:
            raise stop
        return steps

    def refuse(
        self, raw: Any, error: InvalidJob, *, task_id: str, queue: str | None = None
    ) -> Finished:
        """End a call that carries no batch with one ``invalid_job`` event (entry
        ``job_id`` ``""``) and a dead-letter entry."""
        finished = self.pipeline.refuse(
            raw, error, task_id=task_id, queue=queue, task=BATCH_TASK, not_a_job=True
        )
        log.warning("batch %s refused: %s", task_id, error.message)
        return finished

    def expire(
        self, jobs: Any, *, task_id: str, queue: str | None, expires: datetime | None
    ) -> Sequence[Finished]:
        """End every job of a batch whose Celery ``expires`` passed before it ran."""
        try:
            batch = self.check(jobs)
        except InvalidJob as exc:
            return [self.refuse(jobs, exc, task_id=task_id, queue=queue)]
        return [
            self.pipeline.expire(raw, task_id=f"{task_id}:{i}", queue=queue, expires=expires)
            for i, raw in enumerate(batch)
        ]


def _first(kept: BaseException | None, new: BaseException) -> BaseException:
    """The error that decides what happens to the message: a configuration error (the
    batch waits for it to be mended) before any other."""
    if kept is None or (isinstance(new, ConfigError) and not isinstance(kept, ConfigError)):
        return new
    return kept
