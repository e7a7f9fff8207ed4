"""``herald ping``: do the broker, the state Redis and (if asked or running) a worker answer?

The Docker image's health check is ``herald ping --worker celery@$HOSTNAME``: healthy
means that very worker answers a broadcast through the broker, so both its broker
connection and its consumer loop are alive (docs/operations.md#health-checks).
"""

from __future__ import annotations

from celery import Celery

from herald.cli.connect import Session


class NoAnswer(Exception):
    """Raised when the worker asked for does not answer; the message is the line to print."""


def ping(session: Session, *, worker: str | None, timeout: float) -> str:
    """Check the servers and workers; the one line to print, or raise
    :class:`~herald.cli.connect.Unreachable` / :class:`NoAnswer`."""
    session.check_broker()
    broker, state = session.endpoints
    servers = (
        f"{state.describe()} answers (broker and state)"
        if broker.url == state.url
        else f"{broker.describe()} and {state.describe()} answer"
    )
    names = _workers(broker.url, worker, timeout)
    if worker is not None:
        if worker not in names:
            raise NoAnswer(f"worker {worker} did not answer a ping within {timeout:g}s; {servers}")
        return f"ok: {servers}; {worker} answers"
    if not names:
        return f"ok: {servers}; no worker answered within {timeout:g}s"
    return f"ok: {servers}; {len(names)} worker(s) answer: {', '.join(sorted(names))}"


def _workers(broker_url: str, worker: str | None, timeout: float) -> list[str]:
    """Names of the workers that answer a Celery ping (only ``worker``, when given)."""
    app = Celery("herald-ping", broker=broker_url, set_as_current=False)
    app.conf.broker_connection_retry_on_startup = False
    try:
        replies = app.control.ping(
            destination=[worker] if worker else None,
            timeout=timeout,
            limit=1 if worker else None,
        )
    finally:
        app.close()
    return [name for reply in replies or [] for name in reply]
