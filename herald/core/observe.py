"""What the send path reports as it goes, for metrics: an :class:`Observer` it calls.

The core knows nothing of Prometheus: the worker hands the pipeline an observer that
counts (:mod:`herald.worker.metrics`); tests and the default use this one, which does
nothing.
"""

from __future__ import annotations

from herald.contract.events import OutcomeEvent


class Observer:
    """Does nothing with what it is told; the worker's metrics override each method."""

    def job_started(self, queue_wait_s: float | None) -> None:
        """A job's first try began, ``queue_wait_s`` after it was enqueued (None: unknown)."""

    def job_finished(self, event: OutcomeEvent) -> None:
        """A job ended with ``event``."""

    def in_flight(self, change: int) -> None:
        """A job began (+1) or stopped (-1) running in this process."""

    def provider_call(self, channel_type: str, seconds: float) -> None:
        """One provider request took ``seconds``, whatever its answer."""

    def retry(self, code: str) -> None:
        """A transient error of ``code`` will be tried again."""

    def in_doubt(self) -> None:
        """A request that may have reached the provider is being made again."""

    def rate_limit_wait(self, seconds: float) -> None:
        """The fleet's rate limit asked for a wait of ``seconds``."""
