"""Delivering one planned message through its adapter: rate-limit slots, in-call retries,
part-by-part progress and the in-doubt rule. The result says what the pipeline does next:
record a send, record a failure, or put the job back on the queue.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from tenacity import RetryCallState, Retrying, retry_if_exception

from herald.adapters.base import AnyAdapter, Outbound, Part
from herald.config import InDoubtPolicy
from herald.contract.errors import PermanentError, ProviderUnavailable, SendError, TransientError
from herald.core.retry import RetryPolicy
from herald.store.ratelimit import RateLimiter
from herald.store.records import DeliveryStore

log = logging.getLogger("herald.delivery")

#: Short waits for a rate-limit slot one call may take before going back to the queue.
MAX_SLOT_WAITS = 20


class Throttled(Exception):
    """Raised when the fleet-wide rate limit asks for a wait too long to spend in the call."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"rate limit: wait {wait:.2f}s")
        self.wait = wait


@dataclass
class Attempt:
    """Mutable progress of one task call: tries made and parts accepted, by part index."""

    job_id: str
    token: str
    attempts: int
    parts: dict[int, list[str]]


@dataclass(frozen=True)
class Delivered:
    """Every part was accepted."""


@dataclass(frozen=True)
class Failed:
    """The job fails with ``error``."""

    error: SendError


@dataclass(frozen=True)
class Again:
    """Try again from the queue in ``wait`` seconds."""

    wait: float
    reason: str


Result = Delivered | Failed | Again


class Deliverer:
    """Runs the provider calls of one job; shared by the threads of a worker."""

    def __init__(
        self,
        store: DeliveryStore,
        limiter: RateLimiter,
        policy: RetryPolicy,
        in_doubt: InDoubtPolicy,
    ) -> None:
        self.store = store
        self.limiter = limiter
        self.policy = policy
        self.in_doubt = in_doubt

    def deliver(
        self,
        adapter: AnyAdapter,
        out: Outbound,
        plan: list[Part],
        attempt: Attempt,
        *,
        age: Callable[[], float],
        resumed_in_doubt: bool = False,
    ) -> Result:
        """Send every part of ``plan`` not yet accepted; ``age`` is the job's age in s."""
        if resumed_in_doubt:
            log.warning("job %s: an earlier attempt was cut off mid-send (in doubt)", out.job_id)
            if not self.may_resend(adapter):
                return Failed(
                    ProviderUnavailable(
                        "in doubt: an earlier attempt was interrupted after the request may "
                        "have reached the provider; not resent (HERALD_IN_DOUBT=at_most_once)"
                    )
                )
        try:
            self._retrying(adapter, attempt, age)(self._call, adapter, out, plan, attempt)
        except PermanentError as exc:
            return Failed(exc)
        except TransientError as exc:
            return self._after_transient(adapter, attempt, exc, age)
        except Throttled as exc:
            # The fleet's own rate limit: wait in the queue, never fail the job for it.
            self._release(attempt)
            return Again(exc.wait, "waiting for a rate-limit slot")
        return Delivered()

    def may_resend(self, adapter: AnyAdapter) -> bool:
        """Whether a send that may have gone through may be made again."""
        return adapter.dedupes or self.in_doubt == InDoubtPolicy.AT_LEAST_ONCE

    def _call(self, adapter: AnyAdapter, out: Outbound, plan: list[Part], attempt: Attempt) -> None:
        """One try at the whole message: every part not yet accepted, in order, each
        after a slot of the fleet-wide rate limit."""
        pending = [part for part in plan if part.index not in attempt.parts]
        for position, part in enumerate(pending):
            self._take_slot(adapter, out.recipient)
            if position == 0:
                attempt.attempts += 1
            attempt.parts[part.index] = adapter.send_part(out, part)
            if position < len(pending) - 1:
                # Record the accepted part before the next one leaves: a crash now
                # must not make a retry send it again.
                self.store.save_progress(
                    attempt.job_id, attempt.token, attempts=attempt.attempts, parts=attempt.parts
                )

    def _take_slot(self, adapter: AnyAdapter, recipient: str) -> None:
        """Wait briefly for a rate-limit slot, or raise :class:`Throttled` for a long wait."""
        wait = 0.0
        for _ in range(MAX_SLOT_WAITS):
            wait = self.limiter.acquire(adapter.channel, recipient)
            if wait <= 0:
                return
            if wait > self.policy.inline_max_s:
                break
            time.sleep(wait)
        raise Throttled(wait)

    def _retrying(
        self, adapter: AnyAdapter, attempt: Attempt, age: Callable[[], float]
    ) -> Retrying:
        """tenacity, retrying in-call only transient errors whose wait is short."""

        def short(exc: BaseException) -> bool:
            return (
                isinstance(exc, TransientError)
                and (not exc.in_doubt or self.may_resend(adapter))
                and self.policy.inline(attempt.attempts, exc)
                and not self.policy.exhausted(attempt.attempts, age())
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

    def _after_transient(
        self, adapter: AnyAdapter, attempt: Attempt, exc: TransientError, age: Callable[[], float]
    ) -> Result:
        if exc.in_doubt and not self.may_resend(adapter):
            exc.message = f"in doubt, not resent (HERALD_IN_DOUBT=at_most_once): {exc.message}"
            return Failed(exc)
        wait = self.policy.wait(attempt.attempts, exc)
        if self.policy.exhausted(attempt.attempts, age(), wait):
            return Failed(exc)
        if exc.in_doubt:
            self._count_in_doubt(attempt, exc)
        self._release(attempt)
        log.info("job %s: %s; retrying in %.1fs", attempt.job_id, exc.code, wait)
        return Again(wait, exc.message)

    def _count_in_doubt(self, attempt: Attempt, exc: TransientError) -> None:
        """A resend after an answer that leaves the first send in doubt: count it."""
        log.warning("job %s: resending after an in-doubt failure (%s)", attempt.job_id, exc.message)
        self.store.count("in_doubt")

    def _release(self, attempt: Attempt) -> None:
        """Save progress and hand the lease back, for a retry from the queue."""
        self.store.save_progress(
            attempt.job_id,
            attempt.token,
            attempts=attempt.attempts,
            parts=attempt.parts,
            release=True,
        )
