"""Herald's one retry policy: which failures retry, how long to wait, and where to wait.

Layers:
- Permanent errors never retry.
- A transient error whose wait is short (``HERALD_RETRY_INLINE_MAX_S``) retries inside the
  same task call, with tenacity: a brief pause is cheaper than a trip through the queue.
- A longer wait goes back to the queue (Celery ``retry(countdown=...)``), so no worker
  slot sleeps.
- Exhaustion (``HERALD_RETRY_MAX_ATTEMPTS`` provider calls, or ``HERALD_RETRY_MAX_AGE_S``
  since the job was enqueued) fails the job with the last transient error's code.

Waits are exponential with full jitter, capped; a provider's own hint (``Retry-After``,
Telegram ``retry_after``) is honoured even above the cap.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from herald.config import Settings
from herald.contract.errors import TransientError


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff and give-up rules for transient failures."""

    max_attempts: int = 8
    max_age_s: float = 3600
    backoff_s: float = 1
    backoff_max_s: float = 300
    inline_max_s: float = 2
    visibility_timeout_s: float = 1800

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        """The policy the ``HERALD_RETRY_*`` settings describe."""
        return cls(
            max_attempts=settings.retry_max_attempts,
            max_age_s=settings.retry_max_age_s,
            backoff_s=settings.retry_backoff_s,
            backoff_max_s=settings.retry_backoff_max_s,
            inline_max_s=settings.retry_inline_max_s,
            visibility_timeout_s=settings.visibility_timeout_s,
        )

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

    def queue_delay(self, seconds: float) -> float:
        """A countdown that stays well inside the broker's visibility timeout.

        On Redis a countdown is an ETA message held unacked in a worker's memory; one
        that outlives the visibility timeout is delivered again (kombu#337). A provider
        hint longer than this is met by waiting again after the next answer.
        """
        return max(0.0, min(seconds, self.visibility_timeout_s / 2))
