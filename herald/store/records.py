"""Delivery state in Redis: the job record, its lease and the outcome event, changed atomically.

A job's record moves ``pending`` → ``sending`` → (``retrying`` → ``sending`` ...) → ``sent`` |
``failed`` (docs/delivery.md#the-delivery-record-heraldjobjob_id). ``pending`` is written at
enqueue by :class:`~herald.store.pending.PendingJobs`; every later change is one Lua script
(``lua/claim.lua``, ``progress.lua``, ``finish.lua``), so the record and the outcome stream
can never disagree:

- :meth:`DeliveryStore.claim` takes the job's lease (one worker talks to the provider for
  a job at a time) unless the job is already finished or leased by another copy, and
  returns the record together with the contact's recorded interactions (one round trip).
- :meth:`DeliveryStore.save_progress` records the parts already accepted, so a retry
  never resends them.
- :meth:`DeliveryStore.finish` writes the terminal state and appends the outcome event
  in the same script: only the first terminal transition of a ``job_id`` emits.

A claim that finds the record ``sending`` with no live lease means an earlier attempt was
cut off after it claimed the job: the request may have left, so the claim is *in doubt*.

The claim and the finish also take the job out of its queue's pending index, whose keys
they get from :attr:`DeliveryStore.pending` and declare in their headers (why the index
has a module of its own: :mod:`herald.store.pending`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

import redis

from herald.contract.events import OutcomeEvent
from herald.contract.names import DEAD_STREAM, DEFAULT_QUEUE
from herald.store.decode import text
from herald.store.keys import SNIPPETS_KEY, STATS_KEY, interactions_key, job_key, lease_key
from herald.store.pending import PendingJobs
from herald.store.scripts import CLAIM, FINISH, INTERACTION, PROGRESS


@dataclass(frozen=True)
class Claim:
    """The answer of :meth:`DeliveryStore.claim`."""

    status: Literal["claimed", "done", "busy"]
    attempts: int = 0
    first_seen: str | None = None
    #: Provider ids of parts already accepted, by part index.
    parts: dict[int, list[str]] = field(default_factory=dict)
    in_doubt: bool = False
    #: Seconds the other holder's lease still runs (``busy``).
    lease_left: int = 0
    #: Recorded interactions: channel_id -> {"at_ms", "at", "identifier"}.
    interactions: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The run-time snippet library (read in the same round trip).
    snippets: dict[str, str] = field(default_factory=dict)


class DeliveryStore:
    """Herald's state in Redis, shared by every worker of the fleet."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        events_stream: str,
        retention_s: int,
        lease_s: int,
        queue: str = DEFAULT_QUEUE,
    ):
        self.redis = client
        self.events_stream = events_stream
        self.retention_s = retention_s
        self.lease_s = lease_s
        self._claim = CLAIM.on(client)
        self._progress = PROGRESS.on(client)
        self._finish = FINISH.on(client)
        self._interaction = INTERACTION.on(client)
        self.pending = PendingJobs(client, queue=queue, retention_s=retention_s)

    def claim(self, job_id: str, token: str, *, now: str, contact_id: str) -> Claim:
        """Take the job's lease (or learn it is done or busy), with what routing and
        rendering read: the contact's interactions and the snippet library. One round trip."""
        pipe = self.redis.pipeline(transaction=False)
        self._claim(
            keys={
                "record": job_key(job_id),
                "lease": lease_key(job_id),
                "stats": STATS_KEY,
                "pending": self.pending.key,
                "watermark": self.pending.watermark_key,
            },
            args={
                "token": token,
                "lease_s": self.lease_s,
                "retention_s": self.retention_s,
                "now": now,
                "job_id": job_id,
            },
            client=pipe,
        )
        pipe.hgetall(interactions_key(contact_id))
        pipe.hgetall(SNIPPETS_KEY)
        answer, interactions, snippets = pipe.execute()
        reply = [text(v) for v in answer]
        if reply[0] == "done":
            return Claim("done")
        if reply[0] == "busy":
            return Claim("busy", lease_left=max(1, int(reply[1])))
        return Claim(
            "claimed",
            attempts=int(reply[1]),
            first_seen=reply[2],
            parts={int(k): v for k, v in json.loads(reply[3]).items()},
            in_doubt=reply[4] == "1",
            interactions={text(k): json.loads(v) for k, v in interactions.items()},
            snippets={text(k): text(v) for k, v in snippets.items()},
        )

    def save_progress(
        self,
        job_id: str,
        token: str,
        *,
        attempts: int,
        parts: dict[int, list[str]],
        release: bool = False,
    ) -> bool:
        """Record attempts and accepted parts; ``release`` hands the lease back for a retry."""
        done = self._progress(
            keys={"record": job_key(job_id), "lease": lease_key(job_id)},
            args={
                "token": token,
                "attempts": attempts,
                "parts": json.dumps(parts),
                "state": "retrying" if release else "sending",
                "lease_s": self.lease_s,
            },
        )
        return bool(done)

    def finish(
        self, event: OutcomeEvent, token: str, *, key: str, parts: dict[int, list[str]]
    ) -> str | None:
        """Write the terminal state of the job ``key`` and append ``event``; None if the job
        had finished already."""
        entry = self._finish(
            keys={
                "record": job_key(key),
                "lease": lease_key(key),
                "events": self.events_stream,
                "pending": self.pending.key,
            },
            args={
                "token": token,
                "outcome": event.data.outcome,
                "attempts": event.data.attempts,
                "parts": json.dumps(parts),
                "retention_s": self.retention_s,
                "job_id": key,
                "event": event.event,
                "entry_job_id": event.job_id,
                "data": event.data.model_dump_json(),
            },
        )
        return text(entry) if entry else None

    def count(self, name: str) -> None:
        """Add one to a fleet-wide counter."""
        self.redis.hincrby(STATS_KEY, name, 1)

    def dead_letter(self, task: str, raw: Any, reason: str) -> None:
        """Keep a refused payload, as JSON text, in the dead-letter stream."""
        try:
            shown = json.dumps(raw, ensure_ascii=False)
            shown.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: escaped, as JSON allows
            shown = json.dumps(raw)
        except (TypeError, ValueError, RecursionError):
            shown = repr(raw)
        self.redis.xadd(DEAD_STREAM, {"task": task, "raw": shown, "reason": reason})

    def record_interaction(
        self, contact_id: str, channel_id: str, identifier: str, at_ms: int, at: str
    ) -> bool:
        """Remember an inbound message; an older one never overwrites a newer one."""
        value = json.dumps({"at_ms": at_ms, "at": at, "identifier": identifier})
        written = self._interaction(
            keys={"interactions": interactions_key(contact_id)},
            args={"channel_id": channel_id, "at_ms": at_ms, "interaction": value},
        )
        return bool(written)
