"""The one place an outcome is recorded: build the event, append it once, log it.

Everything that ends a job (sent, failed, invalid) goes through :meth:`Outcomes.record`,
so metrics and audit hooks have a single place to hang from.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

from herald.contract.errors import SendError
from herald.contract.events import (
    ErrorInfo,
    EventData,
    OutcomeEvent,
    event_name,
    next_step,
    utc_stamp,
)
from herald.contract.job import SendJob, Workflow
from herald.core.observe import Observer
from herald.store.records import JobRecords, KnownAs, Learned

log = logging.getLogger("herald.outcomes")


@dataclass(frozen=True)
class JobRef:
    """What an outcome event says about the job it ends."""

    #: The idempotency key: the job's ``job_id``, else its Celery task id.
    key: str
    #: The job id the event shows (``data.job_id``); None for a payload that is not an
    #: object, whose entry's ``job_id`` field is then ``""``.
    job_id: str | None
    workflow: Workflow | None
    contact_id: str | None
    failure_branch: bool
    enqueued_at: str
    #: The queue the job came from (its due set).
    queue: str
    #: The contact on each of their configured channels, for the webhooks to know them by
    #: (:class:`herald.store.records.Learned`).
    identities: tuple[KnownAs, ...] = ()

    @classmethod
    def of_job(
        cls,
        job: SendJob,
        job_id: str,
        *,
        enqueued_at: str,
        queue: str,
        identities: tuple[KnownAs, ...] = (),
    ) -> JobRef:
        """The reference of a valid job."""
        return cls(
            key=job_id,
            job_id=job_id,
            workflow=job.workflow,
            contact_id=job.contact.id,
            failure_branch=job.failure_branch,
            enqueued_at=enqueued_at,
            queue=queue,
            identities=identities,
        )

    @classmethod
    def of_refused(cls, raw: Any, task_id: str, *, enqueued_at: str, queue: str) -> JobRef:
        """The reference of an invalid payload: what can be read of it, else the task id."""
        if not isinstance(raw, dict):
            return cls(task_id, None, None, None, False, enqueued_at, queue)
        contact = raw.get("contact")
        branch = raw.get("failure_branch")
        job_id = _shown(raw.get("job_id")) or task_id
        return cls(
            key=job_id,
            job_id=job_id,
            workflow=_workflow_or_none(raw.get("workflow")),
            contact_id=_shown(contact.get("id")) if isinstance(contact, dict) else None,
            failure_branch=branch if isinstance(branch, bool) else False,
            enqueued_at=enqueued_at,
            queue=queue,
        )


#: The longest id an event of a refused payload repeats from it.
SHOWN_ID_MAX = 512


def _shown(value: Any) -> str | None:
    """``value`` if an event may repeat it: a short text of printable UTF-8, else None."""
    if not isinstance(value, str) or not value or len(value) > SHOWN_ID_MAX:
        return None
    # Not printable: control characters, line separators, lone surrogates.
    return value if value.isprintable() else None


def _workflow_or_none(raw: Any) -> Workflow | None:
    if not isinstance(raw, dict):
        return None
    try:
        workflow = Workflow.model_validate(raw)
    except ValueError:
        return None
    ids = (workflow.workflow_id, workflow.run_id, workflow.step_id)
    return workflow if all(v is None or _shown(v) == v for v in ids) else None


class Outcomes:
    """Appends outcome events through the delivery store."""

    def __init__(self, store: JobRecords, observer: Observer | None = None) -> None:
        self.store = store
        self.observer = observer or Observer()

    def record(
        self,
        ref: JobRef,
        *,
        token: str,
        error: SendError | None = None,
        channel: tuple[str, str] | None = None,
        parts: dict[int, list[str]] | None = None,
        attempts: int = 0,
        recipient: str | None = None,
    ) -> OutcomeEvent | None:
        """End the job: append its one event. Returns None if it had ended already.

        ``recipient`` is the identity the job was sent to on ``channel``: with it, the
        provider ids of ``parts`` are kept for the statuses webhooks report later."""
        outcome: Literal["sent", "failed"] = "failed" if error else "sent"
        parts = parts or {}
        event = OutcomeEvent(
            event=event_name(outcome),
            job_id=ref.job_id or "",
            data=EventData(
                job_id=ref.job_id,
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
        learned = None
        if ref.contact_id is not None and (ref.identities or parts):
            sent_to = (channel[0], recipient) if channel and recipient is not None else None
            learned = Learned(ref.contact_id, ref.identities, sent_to)
        entry = self.store.finish(
            event, token, key=ref.key, parts=parts, queue=ref.queue, learned=learned
        )
        if entry is None:
            log.info("job %s had ended already; no second event", ref.key)
            return None
        if error:
            log.warning("job %s failed: %s (%s)", ref.key, error.code, error.message)
        else:
            log.info("job %s sent on %s", ref.key, event.data.channel_id)
        self.observer.job_finished(event)
        return event
