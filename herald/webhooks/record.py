"""The Redis side of the webhook intake: normalized records into the interaction record,
``herald:inbound`` and ``herald:statuses`` (docs/webhooks.md#what-the-streams-carry).

At most two round trips per call, whatever it holds: one read (who the writers are, by
what the jobs taught: herald.store.records.Learned; which messages a watermark covers),
then one batch of scripts: ``inbound.lua`` (once per provider event) with
``interaction.lua`` (the same script as ``herald.record_interaction``: an older
interaction never overwrites a newer one), and ``status.lua`` (once per message and
status, never backwards). A call of statuses alone is one round trip.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import redis

from herald.config import Settings
from herald.contract.events import utc_stamp
from herald.contract.names import (
    EVENT_DELIVERED,
    EVENT_READ,
    EVENT_RECEIVED,
    EVENT_UNDELIVERED,
)
from herald.store.decode import text
from herald.store.keys import identity_key, interactions_key, message_key, seen_key, sent_key
from herald.store.scripts import INBOUND, INTERACTION, STATUS, Batch
from herald.webhooks.model import RANKS, Inbound, Item, Status, StatusName, Watermark

EVENTS: dict[StatusName, str] = {
    "delivered": EVENT_DELIVERED,
    "read": EVENT_READ,
    "undelivered": EVENT_UNDELIVERED,
}


@dataclass
class Recorded:
    """What one call changed, for the log line (counts only: no content)."""

    inbound: int = 0
    duplicates: int = 0
    statuses: int = 0
    #: Statuses of messages whose send is not recorded yet: emitted once it is.
    waiting: int = 0
    #: Statuses that were not news (a repeat, or behind what was emitted).
    stale: int = 0
    unknown_contacts: list[str] = field(default_factory=list)


class Recorder:
    """Writes the records of verified webhook calls; thread-safe (one Redis pool)."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.redis = client
        self.inbound_stream = settings.inbound_stream
        self.status_stream = settings.status_stream
        #: How long messages, dedupe marks and stream entries are kept.
        self.keep_ms = int(settings.events_retention_s * 1000)
        #: How long a status waits for its send to be recorded: longer than any send.
        self.wait_ms = settings.lease_s * 2 * 1000

    def record(self, items: Sequence[Item], received: datetime) -> Recorded:
        """Record every item of one call."""
        inbound = [i for i in items if isinstance(i, Inbound)]
        statuses = [i for i in items if isinstance(i, Status)]
        marks = [i for i in items if isinstance(i, Watermark)]
        contacts: list[dict[str, Any] | None] = []
        if inbound or marks:
            contacts, covered = self._read(inbound, marks)
            statuses += covered
        batch = Batch(self.redis)
        for item, known in zip(inbound, contacts, strict=True):
            self._inbound(batch, item, known, received)
        for status in statuses:
            self._status(batch, status, received)
        return self._count(batch.execute() if inbound or statuses else [], inbound, contacts)

    def _read(
        self, inbound: list[Inbound], marks: list[Watermark]
    ) -> tuple[list[dict[str, Any] | None], list[Status]]:
        """The known contact of each inbound item; the statuses the watermarks imply."""
        pipe = self.redis.pipeline(transaction=False)
        for item in inbound:
            pipe.get(identity_key(item.channel_id, item.identity))
        for mark in marks:
            pipe.zrangebyscore(sent_key(mark.channel_id, mark.identity), "-inf", mark.upto_ms)
        replies = pipe.execute()
        contacts = [json.loads(r) if r else None for r in replies[: len(inbound)]]
        covered = [
            Status(mark.channel_id, mark.channel_type, text(message_id), mark.status, mark.at)
            for mark, found in zip(marks, replies[len(inbound) :], strict=True)
            for message_id in found
        ]
        return contacts, covered

    def _inbound(
        self, batch: Batch, item: Inbound, known: dict[str, Any] | None, received: datetime
    ) -> None:
        at = item.at or received
        data = {
            "channel_id": item.channel_id,
            "channel_type": item.channel_type,
            "identifier": item.identifier,
            "contact_id": known["contact_id"] if known else None,
            "provider_message_id": item.provider_message_id,
            "text": item.text,
            "received_at": utc_stamp(at),
            "raw_type": item.raw_type,
        }
        INBOUND.batch(
            batch,
            keys={
                "seen": seen_key(item.channel_id, item.event_id),
                "inbound": self.inbound_stream,
            },
            args={"event": EVENT_RECEIVED, "data": _json(data), "keep_ms": self.keep_ms},
        )
        if known is None:
            return
        at_ms = int(at.timestamp() * 1000)
        # The identifier as the contact's jobs write it: the one a reply is sent to.
        interaction = {"at_ms": at_ms, "at": utc_stamp(at), "identifier": known["identifier"]}
        INTERACTION.batch(
            batch,
            keys={"interactions": interactions_key(known["contact_id"])},
            args={"channel_id": item.channel_id, "at_ms": at_ms, "interaction": _json(interaction)},
        )

    def _status(self, batch: Batch, status: Status, received: datetime) -> None:
        data = {
            "channel_id": status.channel_id,
            "channel_type": status.channel_type,
            "provider_message_id": status.provider_message_id,
            "status_at": utc_stamp(status.at or received),
            "error": status.error,
        }
        STATUS.batch(
            batch,
            keys={
                "message": message_key(status.channel_id, status.provider_message_id),
                "statuses": self.status_stream,
            },
            args={
                "rank": RANKS[status.status],
                "event": EVENTS[status.status],
                # The script puts {"job_id": ..., before these members.
                "data": _json(data).removeprefix("{"),
                "job_hint": status.job_hint or "",
                "keep_ms": self.keep_ms,
                "wait_ms": self.wait_ms,
            },
        )

    def _count(
        self, replies: list[Any], inbound: list[Inbound], contacts: list[dict[str, Any] | None]
    ) -> Recorded:
        done = Recorded()
        replies = list(replies)
        for item, known in zip(inbound, contacts, strict=True):
            if replies.pop(0):
                done.inbound += 1
            else:
                done.duplicates += 1
            if known is not None:
                replies.pop(0)  # the interaction's answer: 0 when a newer one is kept
            else:
                done.unknown_contacts.append(item.channel_id)
        for reply in replies:
            if not reply:
                done.stale += 1
            elif text(reply) == "waiting":
                done.waiting += 1
            else:
                done.statuses += 1
        return done


def _json(value: Any) -> str:
    """Compact JSON, UTF-8 as it is; a lone surrogate (JSON allows its escape) escaped."""
    shown = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    try:
        shown.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, separators=(",", ":"))
    return shown
