"""The outcome event (docs/contract.md#outcome-events): the one record the next step reads."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from herald.contract.job import Workflow
from herald.contract.names import EVENT_FAILED, EVENT_SENT


class ErrorInfo(BaseModel):
    """Why a job failed."""

    model_config = ConfigDict(extra="forbid")

    code: str
    retryable: bool
    message: str
    provider_code: str | None


class EventData(BaseModel):
    """The ``data`` field of an outcome entry; every key is always present."""

    model_config = ConfigDict(extra="forbid")

    job_id: str | None
    workflow: Workflow | None
    contact_id: str | None
    channel_id: str | None
    channel_type: str | None
    outcome: Literal["sent", "failed"]
    next: Literal["success", "failure", "end"]
    provider_message_ids: list[str]
    error: ErrorInfo | None
    attempts: int
    enqueued_at: str
    finished_at: str


class OutcomeEvent(BaseModel):
    """One entry of the outcome stream: ``event``, ``job_id`` and ``data``."""

    model_config = ConfigDict(extra="forbid")

    event: Literal["message.sent", "message.failed"]
    job_id: str
    data: EventData

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> OutcomeEvent:
        """Read an entry back from the stream."""
        return cls(event=fields["event"], job_id=fields["job_id"], data=json.loads(fields["data"]))


def event_name(outcome: Literal["sent", "failed"]) -> Literal["message.sent", "message.failed"]:
    """The ``event`` field for an outcome."""
    return EVENT_SENT if outcome == "sent" else EVENT_FAILED  # type: ignore[return-value]


def next_step(
    outcome: Literal["sent", "failed"], failure_branch: bool
) -> Literal["success", "failure", "end"]:
    """Where the workflow goes on: success, the failure branch, or the end of the run."""
    if outcome == "sent":
        return "success"
    return "failure" if failure_branch else "end"


def utc_stamp(moment: datetime | None = None) -> str:
    """UTC ISO 8601 with milliseconds and ``Z``: ``2026-11-24T10:00:00.120Z``."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
