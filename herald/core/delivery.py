"""Delivering one planned message through its adapter: rate-limit slots, part-by-part
progress, and in-call retries as the retry policy decides (:mod:`herald.core.retry`).

The result says what the pipeline does next: record a send, record a failure, or put the
job back on the queue.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tenacity import RetryCallState, Retrying

from herald.adapters.base import AnyAdapter, Outbound, Part
from herald.contract.errors import SendError, Throttled
from herald.core.observe import Observer
from herald.core.retry import Decision, GiveUp, Requeue, RetryNow, RetryPolicy
from herald.store.ratelimit import RateLimiter
from herald.store.records import JobRecords

log = logging.getLogger("herald.delivery")


@dataclass
class Attempt:
    """Mutable progress of one task call: tries made and parts accepted, by part index."""

    job_id: str
    token: str
    attempts: int
    parts: dict[int, list[str]]
    #: The queue the job came from (its due set, and where its retries go).
    queue: str
    #: Short waits for a rate-limit slot spent in this call.
    slot_waits: int = field(default=0)
    #: A try at the whole message is under way: a rate-limit wait does not end it, a
    #: provider's failure does.
    trying: bool = field(default=False)


@dataclass(frozen=True)
class Delivered:
    """Every part was accepted."""


Result = Delivered | GiveUp | Requeue


class Delivery:
    """Runs the provider calls of one job; shared by the threads of a worker."""

    def __init__(
        self,
        store: JobRecords,
        limiter: RateLimiter,
        policy: RetryPolicy,
        observer: Observer | None = None,
    ) -> None:
        self.observer = observer or Observer()
        self.store = store
        self.limiter = limiter
        self.policy = policy

    def run(
        self,
        adapter: AnyAdapter,
        out: Outbound,
        plan: list[Part],
        attempt: Attempt,
        *,
        age: Callable[[], float],
    ) -> Result:
        """Send every part of ``plan`` not yet accepted; ``age`` is the job's age in s."""
        decided: list[Decision] = []

        def retry_now(state: RetryCallState) -> bool:
            cause = state.outcome.exception() if state.outcome else None
            if not isinstance(cause, SendError | Throttled):
                return False  # a bug: let it out
            if isinstance(cause, SendError):
                attempt.trying = False
            decided.append(
                self.policy.decide(
                    cause, attempts=attempt.attempts, age_s=age(), dedupes=adapter.dedupes
                )
            )
            self._observe(cause, decided[-1])
            return isinstance(decided[-1], RetryNow)

        def before_sleep(state: RetryCallState) -> None:
            decision = decided[-1]
            if isinstance(decision, RetryNow) and decision.resends_in_doubt:
                self._count_in_doubt(attempt)
            # Each try may take up to the adapters' deadline: renew the lease for the next.
            self._save(attempt)

        retrying = Retrying(
            retry=retry_now,
            wait=lambda _: _wait_of(decided[-1]),
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            retrying(self._call, adapter, out, plan, attempt)
        except (SendError, Throttled):
            return self._stop(decided[-1], attempt)
        return Delivered()

    def _stop(self, decision: Decision, attempt: Attempt) -> Result:
        """Act on a decision that ends this call: fail, or schedule the next try in the
        job's record (the sweeper publishes it when due)."""
        if isinstance(decision, GiveUp):
            return decision
        assert isinstance(decision, Requeue)
        if decision.resends_in_doubt:
            self._count_in_doubt(attempt)
        self.store.schedule_retry(
            attempt.job_id,
            attempt.token,
            attempts=attempt.attempts,
            parts=attempt.parts,
            after_s=decision.after,
            queue=attempt.queue,
        )
        log.info("job %s: %s; again in %.1fs", attempt.job_id, decision.reason, decision.after)
        return decision

    def _call(self, adapter: AnyAdapter, out: Outbound, plan: list[Part], attempt: Attempt) -> None:
        """One try at the whole message: every part not yet accepted, in order, each
        after a slot of the fleet-wide rate limit."""
        pending = [part for part in plan if part.index not in attempt.parts]
        for position, part in enumerate(pending):
            self._take_slot(adapter, out.recipient, attempt)
            if not attempt.trying:
                attempt.attempts += 1
                attempt.trying = True
            started = time.monotonic()
            try:
                attempt.parts[part.index] = adapter.send_part(out, part)
            finally:
                self.observer.provider_call(adapter.channel_type, time.monotonic() - started)
            if position < len(pending) - 1:
                # Record the accepted part before the next one leaves: a crash now
                # must not make a retry send it again.
                self._save(attempt)

    def _save(self, attempt: Attempt) -> None:
        """Record the attempts and accepted parts, and renew the lease."""
        self.store.save_progress(
            attempt.job_id,
            attempt.token,
            attempts=attempt.attempts,
            parts=attempt.parts,
            queue=attempt.queue,
        )

    def _take_slot(self, adapter: AnyAdapter, recipient: str, attempt: Attempt) -> None:
        """Take a rate-limit slot, or raise :class:`Throttled` with the wait it needs."""
        wait = self.limiter.acquire(adapter.channel, recipient)
        if wait > 0:
            attempt.slot_waits += 1
            raise Throttled(wait, waits=attempt.slot_waits - 1)

    def _count_in_doubt(self, attempt: Attempt) -> None:
        """A resend after an answer that leaves the first send in doubt: count it."""
        log.warning("job %s: resending after an in-doubt failure", attempt.job_id)
        self.store.count("in_doubt")
        self.observer.in_doubt()

    def _observe(self, cause: SendError | Throttled, decision: Decision) -> None:
        if isinstance(cause, Throttled):
            self.observer.rate_limit_wait(cause.wait)
        elif not isinstance(decision, GiveUp):
            self.observer.retry(cause.code)


def _wait_of(decision: Decision) -> float:
    return decision.wait if isinstance(decision, RetryNow) else 0.0
