"""The send pipeline: one job from payload to outcome.

parse → claim (idempotency lease + interactions, one round trip) → select the channel →
render → plan parts → deliver (short transient waits retried in-call by tenacity) →
record the outcome, or hand the job back to the queue for a long wait.

The pipeline knows nothing of Celery: it returns a :class:`Step` that the task body
turns into an ack or a ``retry(countdown=...)``.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import redis
from tenacity import RetryCallState, Retrying, retry_if_exception

from herald.adapters.base import Adapter, Outbound
from herald.config import ChannelConfig, ChannelType, InDoubtPolicy, Settings
from herald.constants import SEND_TASK
from herald.errors import (
    InternalError,
    InvalidJob,
    PermanentError,
    ProviderUnavailable,
    SendError,
    TransientError,
)
from herald.events import OutcomeEvent, utc_stamp
from herald.job import SendJob, Workflow, parse_job
from herald.outcomes import JobRef, Outcomes
from herald.ratelimit import RateLimiter
from herald.render import RenderContext, render_message
from herald.retry import RetryPolicy
from herald.routing import select_channel
from herald.state import Claim, DeliveryStore
from herald.windows import check_window

log = logging.getLogger("herald.pipeline")


@dataclass(frozen=True)
class Finished:
    """The job ended; ``event`` is None when it had ended before (a duplicate delivery)."""

    event: OutcomeEvent | None


@dataclass(frozen=True)
class RetryLater:
    """Put the job back on the queue and try again in ``countdown`` seconds."""

    countdown: float
    reason: str


Step = Finished | RetryLater


#: Short waits for a rate-limit slot one call may take before going back to the queue.
MAX_SLOT_WAITS = 20


class Throttled(Exception):
    """Raised when the fleet-wide rate limit asks for a wait too long to spend in the call."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"rate limit: wait {wait:.2f}s")
        self.wait = wait


@dataclass
class _Attempt:
    """Mutable progress of one task call: calls made and parts accepted."""

    job_id: str
    token: str
    attempts: int
    parts: dict[int, list[str]]


class Sender:
    """Sends jobs through the configured channels; one per worker process, thread-safe."""

    def __init__(
        self,
        settings: Settings,
        channels: Mapping[str, ChannelConfig],
        adapters: Mapping[str, Adapter],
        store: DeliveryStore,
        snippets: Mapping[str, str],
        limiter: RateLimiter,
    ) -> None:
        self.settings = settings
        self.channels = channels
        self.adapters = adapters
        self.store = store
        self.outcomes = Outcomes(store)
        self.snippets = snippets
        self.limiter = limiter
        self.policy = RetryPolicy.from_settings(settings)
        self.tz = ZoneInfo(settings.timezone)

    # -- entry point -----------------------------------------------------------------

    def send(self, raw: Any, *, task_id: str, received_at: datetime | None = None) -> Step:
        """Run one delivery attempt of the payload ``raw`` received as task ``task_id``."""
        received = utc_stamp(received_at)
        token = uuid.uuid4().hex
        try:
            job = parse_job(raw)
        except InvalidJob as exc:
            return Finished(self._refuse(raw, exc, task_id=task_id, received=received, token=token))
        job_id = job.job_id or task_id
        claim = self.store.claim(job_id, token, now=received, contact_id=job.contact.id)
        if claim.status == "done":
            log.info("job %s had ended already; acking the copy", job_id)
            return Finished(None)
        if claim.status == "busy":
            return RetryLater(
                self.policy.queue_delay(claim.lease_left),
                f"job {job_id} is being sent by another worker",
            )
        ref = JobRef(
            key=job_id,
            event_job_id=job_id,
            data_job_id=job_id,
            workflow=job.workflow,
            contact_id=job.contact.id,
            failure_branch=job.failure_branch,
            enqueued_at=utc_stamp(job.enqueued_at)
            if job.enqueued_at
            else claim.first_seen or received,
        )
        attempt = _Attempt(job_id, token, claim.attempts, dict(claim.parts))
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

    def _refuse(
        self, raw: Any, exc: InvalidJob, *, task_id: str, received: str, token: str
    ) -> OutcomeEvent | None:
        """End a payload that is not a valid job with ``invalid_job``."""
        is_object = isinstance(raw, dict)
        given = raw.get("job_id") if is_object else None
        job_id = given if isinstance(given, str) and given else task_id
        workflow = raw.get("workflow") if is_object else None
        contact = raw.get("contact") if is_object else None
        ref = JobRef(
            key=job_id,
            event_job_id=job_id if is_object else "",
            data_job_id=job_id if is_object else None,
            workflow=None if not isinstance(workflow, dict) else _workflow_or_none(workflow),
            contact_id=contact.get("id")
            if isinstance(contact, dict) and isinstance(contact.get("id"), str)
            else None,
            failure_branch=bool(raw.get("failure_branch"))
            if is_object and isinstance(raw.get("failure_branch"), bool)
            else False,
            enqueued_at=received,
        )
        event = self.outcomes.record(ref, token=token, error=exc)
        if event is not None and not is_object:
            self.store.dead_letter(SEND_TASK, raw, exc.message)
        return event

    def _deliver(self, job: SendJob, claim: Claim, ref: JobRef, attempt: _Attempt) -> Step:
        route = select_channel(job, self.channels, claim.interactions)
        channel = route.channel
        adapter = self.adapters[channel.id]
        message = job.channel_responses.get(channel.id, job.message)
        check_window(ChannelType(channel.type), message, route.last_interaction_at, _now())
        rendered = render_message(message, self._context(job, claim.snippets))
        out = Outbound(
            job_id=attempt.job_id,
            channel_id=channel.id,
            contact_id=job.contact.id,
            recipient=route.identifier,
            message=rendered,
            workflow=job.workflow,
        )
        plan = adapter.plan(out)
        on = (channel.id, str(channel.type))
        if claim.in_doubt:
            log.warning(
                "job %s: an earlier attempt was cut off mid-send (in doubt)", attempt.job_id
            )
            if not self._may_resend(adapter):
                error = ProviderUnavailable(
                    "in doubt: an earlier attempt was interrupted after the request may have "
                    "reached the provider; not resent (HERALD_IN_DOUBT=at_most_once)"
                )
                return self._fail(ref, attempt, error, on)
        try:
            self._inline_retrying(adapter, attempt, ref)(self._call, adapter, out, plan, attempt)
        except PermanentError as exc:
            return self._fail(ref, attempt, exc, on)
        except TransientError as exc:
            return self._after_transient(ref, attempt, exc, adapter, on)
        except Throttled as exc:
            # The fleet's own rate limit: wait in the queue, never fail the job for it.
            self.store.save_progress(
                attempt.job_id,
                attempt.token,
                attempts=attempt.attempts,
                parts=attempt.parts,
                release=True,
            )
            return RetryLater(self.policy.queue_delay(exc.wait), "waiting for a rate-limit slot")
        return Finished(
            self.outcomes.record(
                ref, token=attempt.token, channel=on, parts=attempt.parts, attempts=attempt.attempts
            )
        )

    def _call(self, adapter: Adapter, out: Outbound, plan: list[Any], attempt: _Attempt) -> None:
        """One try at the whole message: every part not yet accepted, in order, each
        after a slot of the fleet-wide rate limit."""
        pending = [part for part in plan if part.index not in attempt.parts]
        for position, part in enumerate(pending):
            self._take_slot(adapter, out.recipient)
            if position == 0:
                attempt.attempts += 1
            attempt.parts[part.index] = adapter.deliver(out, part)
            if position < len(pending) - 1:
                # Record the accepted part before the next one leaves: a crash now
                # must not make a retry send it again.
                self.store.save_progress(
                    attempt.job_id, attempt.token, attempts=attempt.attempts, parts=attempt.parts
                )

    def _take_slot(self, adapter: Adapter, recipient: str) -> None:
        """Wait briefly for a rate-limit slot, or raise :class:`Throttled` for a long wait."""
        for _ in range(MAX_SLOT_WAITS):
            wait = self.limiter.acquire(adapter.channel, recipient)
            if wait <= 0:
                return
            if wait > self.policy.inline_max_s:
                break
            time.sleep(wait)
        raise Throttled(wait)

    def _inline_retrying(self, adapter: Adapter, attempt: _Attempt, ref: JobRef) -> Retrying:
        """tenacity, retrying in-call only transient errors whose wait is short."""

        def short(exc: BaseException) -> bool:
            return (
                isinstance(exc, TransientError)
                and (not exc.in_doubt or self._may_resend(adapter))
                and self.policy.inline(attempt.attempts, exc)
                and not self.policy.exhausted(attempt.attempts, self._age(ref))
            )

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            assert isinstance(exc, TransientError)
            return self.policy.wait(attempt.attempts, exc)

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, TransientError) and exc.in_doubt:
                self._count_in_doubt(attempt, exc)

        return Retrying(
            retry=retry_if_exception(short), wait=wait, before_sleep=before_sleep, reraise=True
        )

    def _count_in_doubt(self, attempt: _Attempt, exc: TransientError) -> None:
        """A resend after an answer that leaves the first send in doubt: count it."""
        log.warning("job %s: resending after an in-doubt failure (%s)", attempt.job_id, exc.message)
        self.store.count("in_doubt")

    def _after_transient(
        self,
        ref: JobRef,
        attempt: _Attempt,
        exc: TransientError,
        adapter: Adapter,
        on: tuple[str, str],
    ) -> Step:
        if exc.in_doubt and not self._may_resend(adapter):
            exc.message = f"in doubt, not resent (HERALD_IN_DOUBT=at_most_once): {exc.message}"
            return self._fail(ref, attempt, exc, on)
        wait = self.policy.wait(attempt.attempts, exc)
        if self.policy.exhausted(attempt.attempts, self._age(ref), wait):
            return self._fail(ref, attempt, exc, on)
        if exc.in_doubt:
            self._count_in_doubt(attempt, exc)
        self.store.save_progress(
            attempt.job_id,
            attempt.token,
            attempts=attempt.attempts,
            parts=attempt.parts,
            release=True,
        )
        log.info("job %s: %s; retrying in %.1fs", attempt.job_id, exc.code, wait)
        return RetryLater(self.policy.queue_delay(wait), exc.message)

    def _fail(
        self, ref: JobRef, attempt: _Attempt, exc: SendError, on: tuple[str, str]
    ) -> Finished:
        return Finished(
            self.outcomes.record(
                ref,
                token=attempt.token,
                error=exc,
                channel=on,
                parts=attempt.parts,
                attempts=attempt.attempts,
            )
        )

    # -- helpers -------------------------------------------------------------------

    def _may_resend(self, adapter: Adapter) -> bool:
        return adapter.dedupes or self.settings.in_doubt == InDoubtPolicy.AT_LEAST_ONCE

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
        )


def _now() -> datetime:
    return datetime.now(UTC)


def _workflow_or_none(raw: dict[str, Any]) -> Workflow | None:
    try:
        return Workflow.model_validate(raw)
    except ValueError:
        return None
