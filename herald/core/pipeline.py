"""The send pipeline: one job from payload to outcome.

parse → claim (idempotency lease + interactions + snippets, one round trip) → select the
channel → check its window → render → plan parts → deliver (:mod:`herald.core.delivery`) →
record the outcome, or hand the job back to the queue.

The pipeline knows nothing of Celery: it returns a :class:`Step`, :class:`Finished` or the
retry policy's :class:`~herald.core.retry.Requeue` (the next try is scheduled in the job's
record, and the sweeper publishes it when due); either way the task body acks.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import redis

from herald.adapters.base import AnyAdapter, Outbound
from herald.config import ChannelConfig, ChannelType, Settings
from herald.contract.errors import (
    Expired,
    InternalError,
    InvalidJob,
    ProviderUnavailable,
    SendError,
)
from herald.contract.events import OutcomeEvent, utc_stamp
from herald.contract.job import SendJob, parse_job
from herald.contract.names import SEND_TASK
from herald.core.delivery import Attempt, Delivery, Result
from herald.core.files import attach_files
from herald.core.identities import identity
from herald.core.observe import Observer
from herald.core.outcomes import JobRef, Outcomes
from herald.core.render import Budget, RenderContext, render_message
from herald.core.retry import NOT_RESENT, GiveUp, Requeue, RetryPolicy
from herald.core.routing import Route, select_channel
from herald.core.windows import check_window
from herald.files.library import Library
from herald.store.ratelimit import RateLimiter
from herald.store.records import Claim, JobRecords, KnownAs

log = logging.getLogger("herald.pipeline")


@dataclass(frozen=True)
class Finished:
    """The job ended; ``event`` is None when it had ended before (a duplicate delivery)."""

    event: OutcomeEvent | None


Step = Finished | Requeue


class Pipeline:
    """Sends jobs through the configured channels; one per worker process, thread-safe."""

    def __init__(
        self,
        settings: Settings,
        channels: Mapping[str, ChannelConfig],
        adapters: Mapping[str, AnyAdapter],
        store: JobRecords,
        snippets: Mapping[str, str],
        limiter: RateLimiter,
        observer: Observer | None = None,
        library: Library | None = None,
    ) -> None:
        self.settings = settings
        self.channels = channels
        self.adapters = adapters
        self.store = store
        self.observer = observer or Observer()
        self.outcomes = Outcomes(store, self.observer)
        self.snippets = snippets
        self.policy = RetryPolicy.from_settings(settings)
        self.delivery = Delivery(store, limiter, self.policy, self.observer)
        self.tz = ZoneInfo(settings.timezone)
        #: The file library: jobs' ``file_id`` attachments are looked up there.
        self.library = library

    # -- entry point -----------------------------------------------------------------

    def send(
        self,
        raw: Any,
        *,
        task_id: str,
        queue: str | None = None,
        expires: datetime | None = None,
        received_at: datetime | None = None,
    ) -> Step:
        """Run one delivery attempt of the payload ``raw``, received as task ``task_id`` from
        ``queue`` (the settings' queue by default), with the message's Celery ``expires``."""
        queue = queue or self.settings.queue
        try:
            self._check_size(raw)
            job = parse_job(raw)
        except InvalidJob as exc:
            return self.refuse(raw, exc, task_id=task_id, queue=queue, received_at=received_at)
        received = utc_stamp(received_at)
        token = uuid.uuid4().hex
        job_id = job.job_id or task_id
        enqueued = utc_stamp(job.enqueued_at) if job.enqueued_at else received
        # What the sweeper publishes again if this attempt is cut off: the job, known by its
        # key, with the time it was first enqueued (retries and copies keep its age).
        payload = json.dumps({**raw, "job_id": job_id, "enqueued_at": enqueued})
        claim = self.store.claim(
            job_id,
            token,
            now=received,
            contact_id=job.contact.id,
            payload=payload,
            queue=queue,
            expires=expires.isoformat() if expires else None,
        )
        if claim.status == "done":
            log.info("job %s had ended already; acking the copy", job_id)
            return Finished(None)
        if claim.status == "busy":
            # The record keeps the job: if the holder dies, the sweeper publishes it again.
            log.info("job %s is being sent by another worker; this copy is dropped", job_id)
            return Finished(None)
        if not job.enqueued_at and claim.first_seen:
            enqueued = claim.first_seen
        ref = JobRef.of_job(
            job, job_id, enqueued_at=enqueued, queue=queue, identities=self._identities(job)
        )
        attempt = Attempt(job_id, token, claim.attempts, dict(claim.parts), queue=queue)
        if claim.attempts == 0 and not claim.in_doubt:
            self.observer.job_started(self._age(ref) if job.enqueued_at else None)
        self.observer.in_flight(+1)
        try:
            return self._run(job, claim, ref, attempt)
        finally:
            self.observer.in_flight(-1)

    def _run(self, job: SendJob, claim: Claim, ref: JobRef, attempt: Attempt) -> Step:
        """The job claimed: deliver it, and record whatever ends it."""
        token, job_id = attempt.token, attempt.job_id
        try:
            return self._deliver(job, claim, ref, attempt)
        except redis.RedisError:
            raise  # the state store is unreachable: no outcome can be recorded now
        except SendError as exc:
            return Finished(
                self.outcomes.record(ref, token=token, error=exc, attempts=attempt.attempts)
            )
        except Exception as exc:  # a bug of ours must still end the job with an event
            log.exception("job %s: unexpected error", job_id)
            error = InternalError(f"internal error: {type(exc).__name__}")
            return Finished(
                self.outcomes.record(ref, token=token, error=error, attempts=attempt.attempts)
            )

    # -- steps ---------------------------------------------------------------------

    def refuse(
        self,
        raw: Any,
        error: InvalidJob,
        *,
        task_id: str,
        queue: str | None = None,
        received_at: datetime | None = None,
        task: str = SEND_TASK,
        not_a_job: bool = False,
    ) -> Finished:
        """End a payload that is not a valid job with ``invalid_job``. One that is not even a
        job (not an object, or ``not_a_job``: a call of ``task`` that carries none) is known
        by the task id alone and kept in the dead-letter stream."""
        not_a_job = not_a_job or not isinstance(raw, dict)
        ref = JobRef.of_refused(
            None if not_a_job else raw,
            task_id,
            enqueued_at=utc_stamp(received_at),
            queue=queue or self.settings.queue,
        )
        event = self.outcomes.record(ref, token=uuid.uuid4().hex, error=error)
        if event is not None and not_a_job:
            self.store.dead_letter(task, raw, error.message)
        return Finished(event)

    def expire(
        self, raw: Any, *, task_id: str, queue: str | None = None, expires: datetime | None
    ) -> Finished:
        """End a job whose Celery ``expires`` passed before it was sent with ``expired`` (none
        if it had ended already, or another copy is being sent)."""
        when = f" ({utc_stamp(expires)})" if expires else ""
        error = Expired(f"the job's Celery expires{when} passed before it was sent")
        queue = queue or self.settings.queue
        try:
            job = parse_job(raw)
        except InvalidJob:
            ref = JobRef.of_refused(raw, task_id, enqueued_at=utc_stamp(), queue=queue)
        else:
            enqueued = utc_stamp(job.enqueued_at) if job.enqueued_at else utc_stamp()
            ref = JobRef.of_job(job, job.job_id or task_id, enqueued_at=enqueued, queue=queue)
        attempts = self.store.attempts(ref.key)
        return Finished(
            self.outcomes.record(ref, token=uuid.uuid4().hex, error=error, attempts=attempts)
        )

    def _deliver(self, job: SendJob, claim: Claim, ref: JobRef, attempt: Attempt) -> Step:
        """Route, then send on the chosen channel; what fails from here on names it."""
        route = select_channel(job, self.channels, claim.interactions)
        try:
            result = self._send_on(route, job, claim, ref, attempt)
        except SendError as exc:
            result = GiveUp(exc)
        if isinstance(result, Requeue):
            return result
        channel = route.channel
        return Finished(
            self.outcomes.record(
                ref,
                token=attempt.token,
                error=result.error if isinstance(result, GiveUp) else None,
                channel=(channel.id, str(channel.type)),
                parts=attempt.parts,
                attempts=attempt.attempts,
                recipient=identity(channel.type, route.identifier),
            )
        )

    def _send_on(
        self, route: Route, job: SendJob, claim: Claim, ref: JobRef, attempt: Attempt
    ) -> Result:
        channel = route.channel
        adapter = self.adapters[channel.id]
        message = job.channel_responses.get(channel.id, job.message)
        check_window(ChannelType(channel.type), message, route.last_interaction_at, _now())
        rendered = render_message(message, self._context(job, claim.snippets))
        rendered, files = attach_files(
            rendered, ChannelType(channel.type), self.library, native=adapter.takes_files
        )
        out = Outbound(
            job_id=attempt.job_id,
            channel_id=channel.id,
            contact_id=job.contact.id,
            recipient=route.identifier,
            message=rendered,
            workflow=job.workflow,
            files=files,
        )
        plan = adapter.plan(out)
        if claim.in_doubt:
            log.warning("job %s: an earlier attempt was cut off mid-send (in doubt)", out.job_id)
            if not self.policy.may_resend(dedupes=adapter.dedupes):
                return GiveUp(
                    ProviderUnavailable(
                        "in doubt: an earlier attempt was interrupted after the request may"
                        f" have reached the provider; not resent ({NOT_RESENT})",
                        in_doubt=True,
                    )
                )
        return self.delivery.run(adapter, out, plan, attempt, age=lambda: self._age(ref))

    # -- helpers -------------------------------------------------------------------

    def _check_size(self, raw: Any) -> None:
        """:class:`InvalidJob` for a job over ``HERALD_MAX_PAYLOAD_BYTES`` of JSON."""
        limit = self.settings.max_payload_bytes
        try:
            text = json.dumps(raw, ensure_ascii=False, separators=(",", ":"))
        except (TypeError, ValueError, RecursionError):
            return  # not JSON data: parsing says what is wrong with it
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > limit:
            raise InvalidJob(
                f"job is {size} bytes of JSON; the limit is {limit} (HERALD_MAX_PAYLOAD_BYTES)"
            )

    def _identities(self, job: SendJob) -> tuple[KnownAs, ...]:
        """How the contact is known on each of their configured channels."""
        return tuple(
            KnownAs(
                c.channel_id, identity(self.channels[c.channel_id].type, c.identifier), c.identifier
            )
            for c in job.contact.channels
            if c.channel_id in self.channels
        )

    def _age(self, ref: JobRef) -> float:
        started = datetime.fromisoformat(ref.enqueued_at.replace("Z", "+00:00"))
        return (datetime.now(UTC) - started).total_seconds()

    def _context(self, job: SendJob, live_snippets: Mapping[str, str]) -> RenderContext:
        return RenderContext(
            contact=job.contact,
            assignee=job.assignee,
            variables=job.variables,
            now=datetime.now(self.tz),
            # The run-time library (Redis) overrides the file's snippets of the same name.
            snippets={**self.snippets, **live_snippets},
            budget=Budget(self.settings.max_payload_bytes),
        )


def _now() -> datetime:
    return datetime.now(UTC)
