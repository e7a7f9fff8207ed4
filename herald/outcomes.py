"""The one place an outcome is recorded: build the event, append it once, log it.

Everything that ends a job (sent, failed, invalid) goes through :meth:`Outcomes.record`,
so metrics and audit hooks have a single place to hang from.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from herald.errors import SendError
from herald.events import ErrorInfo, EventData, OutcomeEvent, event_name, next_step, utc_stamp
from herald.job import Workflow
from herald.state import DeliveryStore

log = logging.getLogger("herald.outcomes")


@dataclass(frozen=True)
class JobRef:
    """What an outcome event says about the job it ends."""

    key: str  # the idempotency key: job_id, else the Celery task id
    event_job_id: str  # the entry's job_id field ("" for a payload that is not an object)
    data_job_id: str | None
    workflow: Workflow | None
    contact_id: str | None
    failure_branch: bool
    enqueued_at: str


class Outcomes:
    """Appends outcome events through the delivery store."""

    def __init__(self, store: DeliveryStore) -> None:
        self.store = store

    def record(
        self,
        ref: JobRef,
        *,
        token: str,
        error: SendError | None = None,
        channel: tuple[str, str] | None = None,
        parts: dict[int, list[str]] | None = None,
        attempts: int = 0,
    ) -> OutcomeEvent | None:
        """End the job: append its one event. Returns None if it had ended already."""
        outcome: Literal["sent", "failed"] = "failed" if error else "sent"
        parts = parts or {}
        event = OutcomeEvent(
            event=event_name(outcome),
            job_id=ref.event_job_id,
            data=EventData(
                job_id=ref.data_job_id,
                workflow=ref.workflow,
                contact_id=ref.contact_id,
                channel_id=channel[0] if channel else None,
                channel_type=channel[1] if channel else None,
                outcome=outcome,
                next=next_step(outcome, ref.failure_branch),
                provider_message_ids=[i for k in sorted(parts) for i in parts[k]],
                error=ErrorInfo.model_validate(error.as_error()) if error else None,
                attempts=attempts,
                enqueued_at=ref.enqueued_at,
                finished_at=utc_stamp(),
            ),
        )
        entry = self.store.finish(event, token, key=ref.key, parts=parts)
        if entry is None:
            log.info("job %s had ended already; no second event", ref.key)
            return None
        if error:
            log.warning("job %s failed: %s (%s)", ref.key, error.code, error.message)
        else:
            log.info("job %s sent on %s", ref.key, event.data.channel_id)
        return event
