"""One job looked up: its delivery record ``herald:job:<id>`` and its outcome event.

The record holds the job's payload too (personal data): it is never read here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis

from herald.contract.events import OutcomeEvent
from herald.store.decode import text
from herald.store.keys import job_key
from herald.store.stream import FINISHED, find_event, parse_time

#: The record's fields shown, in this order (the payload is not among them).
SHOWN = ("state", "attempts", "first_seen", "parts", "in_doubt", "queue")


@dataclass(frozen=True)
class JobView:
    """What Redis knows of a job: its record's fields (empty if none) and its event."""

    job_id: str
    record: dict[str, str]
    entry_id: str | None
    event: OutcomeEvent | None

    @property
    def finished(self) -> bool:
        return self.record.get("state") in FINISHED or self.event is not None

    @property
    def found(self) -> bool:
        return bool(self.record) or self.event is not None

    def parts(self) -> dict[str, list[str]]:
        """Provider ids of the parts already accepted, by part index."""
        try:
            parts = json.loads(self.record.get("parts") or "{}")
        except ValueError:
            return {}
        return {str(k): [str(i) for i in v] for k, v in dict(parts).items()}

    def as_json(self) -> dict[str, Any]:
        """The view as one JSON object (``herald job --json``)."""
        record: dict[str, Any] = dict(self.record)
        if "parts" in record:
            record["parts"] = self.parts()
        return {
            "job_id": self.job_id,
            "record": record or None,
            "entry_id": self.entry_id,
            "event": self.event.model_dump(mode="json") if self.event else None,
        }


def look_up(client: redis.Redis, stream: str, job_id: str) -> JobView:
    """The record and the event of ``job_id`` (the event found from its first_seen on)."""
    values = client.hmget(job_key(job_id), list(SHOWN))
    record = {name: text(v) for name, v in zip(SHOWN, values, strict=True) if v is not None}
    found = find_event(client, stream, job_id, since=parse_time(record.get("first_seen")))
    entry_id, event = found if found else (None, None)
    return JobView(job_id, record, entry_id, event)


def summary(view: JobView) -> str:
    """One line of a finished job's outcome: ``message.sent, next success, at ...``."""
    if view.event is None:
        return f"state {view.record.get('state', '?')} (its event is no longer in the stream)"
    data = view.event.data
    said = f"{view.event.event}, next {data.next}, at {data.finished_at}"
    if data.error is not None:
        said += f" ({data.error.code}: {data.error.message})"
    return said
