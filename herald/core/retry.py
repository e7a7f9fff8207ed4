"""Herald's one retry policy: every "try again?" of the send path is :meth:`RetryPolicy.decide`.

What can stop a delivery, and what the decision is (docs/delivery.md#retries):

- a permanent error: give up now;
- a transient error: give up when the attempts or the job's age are spent, or when the
  request may have reached a provider that would send it twice and ``HERALD_IN_DOUBT`` is
  ``at_most_once``; else wait, full-jitter exponential and capped, never below the
  provider's own hint (``Retry-After``, Telegram ``retry_after``);
- the fleet's rate limit (:class:`~herald.contract.errors.Throttled`): wait, never give up.

Where to wait: a short wait (``HERALD_RETRY_INLINE_MAX_S``) is spent inside the task call
(:class:`RetryNow`, tenacity runs the loop); a longer one in the job's record
(:class:`Requeue`: the job is due again after the wait, and the sweeper publishes it then),
so no worker slot sleeps and no message waits in a worker's memory.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from herald.config import InDoubtPolicy, Settings
from herald.contract.errors import PermanentError, SendError, Throttled, TransientError

#: Short waits for a rate-limit slot one call may spend before going back to the queue.
MAX_SLOT_WAITS = 20
#: Why an in-doubt failure was not resent, as its message says.
NOT_RESENT = "HERALD_IN_DOUBT=at_most_once"


@dataclass(frozen=True)
class RetryNow:
    """Wait ``wait`` seconds inside the call, then try again."""

    wait: float
    #: The request that failed may have reached the provider: the retry may send it twice.
    resends_in_doubt: bool = False


@dataclass(frozen=True)
class Requeue:
    """Try again in ``after`` seconds: the job is due then in its record, and published."""

    after: float
    reason: str
    resends_in_doubt: bool = False


@dataclass(frozen=True)
class GiveUp:
    """The job fails with ``error``."""

    error: SendError


Decision = RetryNow | Requeue | GiveUp
Cause = SendError | Throttled


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff, give-up and in-doubt rules, from the ``HERALD_RETRY_*`` settings."""

    max_attempts: int = 8
    max_age_s: float = 3600
    backoff_s: float = 1
    backoff_max_s: float = 300
    inline_max_s: float = 2
    in_doubt: InDoubtPolicy = InDoubtPolicy.AT_LEAST_ONCE

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        """The policy the settings describe."""
        return cls(
            max_attempts=settings.retry_max_attempts,
            max_age_s=settings.retry_max_age_s,
            backoff_s=settings.retry_backoff_s,
            backoff_max_s=settings.retry_backoff_max_s,
            inline_max_s=settings.retry_inline_max_s,
            in_doubt=settings.in_doubt,
        )

    def decide(
        self, cause: Cause, *, attempts: int = 0, age_s: float = 0.0, dedupes: bool = False
    ) -> Decision:
        """What to do after ``cause``, with ``attempts`` calls made, the job ``age_s`` old,
        on a provider that ``dedupes`` resent requests (or not)."""
        if isinstance(cause, Throttled):  # the fleet's own limit: wait, never fail for it
            if cause.wait <= self.inline_max_s and cause.waits < MAX_SLOT_WAITS:
                return RetryNow(cause.wait)
            return Requeue(cause.wait, "waiting for a rate-limit slot")
        if isinstance(cause, PermanentError) or not isinstance(cause, TransientError):
            return GiveUp(cause)
        if cause.in_doubt and not self.may_resend(dedupes=dedupes):
            said = f"in doubt, not resent ({NOT_RESENT}): {cause.message}"
            return GiveUp(cause.with_message(said))
        wait = self.wait(attempts, cause)
        if self.exhausted(attempts, age_s, wait):
            return GiveUp(cause)
        if self.inline(attempts, cause):
            return RetryNow(wait, resends_in_doubt=cause.in_doubt)
        return Requeue(wait, cause.message, resends_in_doubt=cause.in_doubt)

    def may_resend(self, *, dedupes: bool) -> bool:
        """The in-doubt rule: whether a request that may have gone through may be made again."""
        return dedupes or self.in_doubt == InDoubtPolicy.AT_LEAST_ONCE

    def _exponential(self, attempts: int) -> float:
        return float(min(self.backoff_max_s, self.backoff_s * 2.0 ** max(0, attempts - 1)))

    def ceiling(self, attempts: int, error: TransientError) -> float:
        """The longest wait after ``attempts`` failed calls (the jitter draws below it)."""
        return max(self._exponential(attempts), error.retry_after or 0.0)

    def wait(self, attempts: int, error: TransientError) -> float:
        """Seconds to wait before the next call: full jitter, never below the provider's hint."""
        jittered = random.uniform(0, self._exponential(attempts))
        return max(jittered, error.retry_after or 0.0)

    def exhausted(self, attempts: int, age_s: float, next_wait: float = 0.0) -> bool:
        """Whether no further call may be made."""
        return attempts >= self.max_attempts or age_s + next_wait > self.max_age_s

    def inline(self, attempts: int, error: TransientError) -> bool:
        """Whether the next wait is short enough to spend inside the task call."""
        return self.ceiling(attempts, error) <= self.inline_max_s
