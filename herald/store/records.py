"""Job records in Redis: the source of truth of every job, from enqueue to its outcome.

A job's record (``herald:job:<id>``) moves ``queued`` → ``sending`` → (``retrying`` →
``queued`` → ``sending`` ...) → ``sent`` | ``failed``
(docs/delivery.md#the-delivery-record-heraldjobjob_id), and every job not finished is in
its queue's due set (``herald:due:<queue>``) with the time it next needs a look: a queued
job once it has waited a margin, a retry when it is due, a job being sent when its lease
ends. Each change is one Lua script, so the record, the due
set and the outcome stream can never disagree:

- :meth:`JobRecords.record_queued` (``lua/record.lua``): a producer's job, before it is
  published. A job a plain Celery client enqueued gets its record at its first claim.
- :meth:`JobRecords.claim` (``claim.lua``): the job's lease (one worker talks to the provider
  for a job at a time) unless the job has ended or another copy holds it, with what routing
  and rendering read (the contact's interactions, the snippet library) in one round trip.
- :meth:`JobRecords.save_progress` (``progress.lua``): the parts a provider accepted, so a
  retry never resends them; renews the lease.
- :meth:`JobRecords.schedule_retry` (``retry.lua``): hands the lease back and makes the job
  due when its wait is over; the sweeper publishes it then (no message waits in a worker).
- :meth:`JobRecords.finish` (``finish.lua``): the terminal state and the outcome event, in
  one step: only the first terminal transition of a ``job_id`` emits. In the same round
  trip, what the webhooks need (:class:`Learned`, ``sent.lua``): who the contact is on each
  of their channels, and which job each provider message id belongs to.
- :meth:`JobRecords.sweep` and :meth:`JobRecords.mark_queued` (``sweep.lua``,
  ``queued.lua``): the due jobs, for :mod:`herald.core.sweeper`.

A claim that finds the record ``sending`` with no live lease means an earlier attempt was
cut off after it claimed the job: the request may have left, so the claim is *in doubt*.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import redis

from herald.contract.events import OutcomeEvent
from herald.contract.names import DEAD_STREAM, DEFAULT_STATUS_STREAM
from herald.store.coalesce import Coalescer
from herald.store.decode import text
from herald.store.keys import (
    KOMBU_UNACKED_KEY,
    SNIPPETS_KEY,
    STATS_KEY,
    SWEEPER_KEY,
    due_key,
    identity_key,
    interactions_key,
    job_key,
    lease_key,
    message_key,
    sent_key,
    watermark_key,
)
from herald.store.scripts import (
    CLAIM,
    FINISH,
    INTERACTION,
    PROGRESS,
    QUEUED,
    RECORD,
    RETRY,
    SENT,
    SWEEP,
    Batch,
)


@dataclass(frozen=True)
class Due:
    """A job the sweeper must publish: a retry now due, or a job the broker lost."""

    kind: str  # 'publish' (a retry now due) or 'lost'
    job_id: str
    payload: str
    #: The message's Celery ``expires`` (ISO 8601), or None.
    expires: str | None
    #: The due time the sweep gave it (ms): a claim since moves it.
    due_ms: int = 0


@dataclass(frozen=True)
class Claim:
    """The answer of :meth:`JobRecords.claim`."""

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


@dataclass(frozen=True)
class _ClaimCall:
    job_id: str
    token: str
    now: str
    contact_id: str
    payload: str
    queue: str
    expires: str


@dataclass(frozen=True)
class _FinishCall:
    event: OutcomeEvent
    token: str
    key: str
    parts: dict[int, list[str]]
    queue: str
    learned: Learned | None


def _claim_of(answer: Any, interactions: Any, snippets: dict[str, str]) -> Claim:
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
        snippets=snippets,
    )


class KnownAs(NamedTuple):
    """How a contact is known on one channel: the identity webhooks name them by
    (:func:`herald.core.identities.identity`), and the identifier as their jobs write it."""

    channel_id: str
    identity: str
    identifier: str


@dataclass(frozen=True)
class Learned:
    """What a job handled teaches the webhooks (docs/webhooks.md#inbound-messages): the
    contact on each of their configured channels, and where the job's messages went."""

    contact_id: str
    #: The contact on each of their configured channels.
    identities: tuple[KnownAs, ...] = ()
    #: (channel_id, identity of the recipient) the job was sent on; None if it was not.
    sent_to: tuple[str, str] | None = None


class JobRecords:
    """Herald's state in Redis, shared by every worker of the fleet."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        events_stream: str,
        retention_s: int,
        lease_s: int,
        margin_s: float,
        events_retention_s: float = 7 * 24 * 3600,
        status_stream: str = DEFAULT_STATUS_STREAM,
    ):
        self.redis = client
        self.events_stream = events_stream
        #: Where statuses that waited for their send are emitted (``sent.lua``).
        self.status_stream = status_stream
        self.retention_s = retention_s
        self.lease_s = lease_s
        #: How long a queued job may go unclaimed before the sweeper looks at it.
        self.margin_ms = int(margin_s * 1000)
        #: How long the outcome stream keeps an event (trimmed as events are added).
        self.events_keep_ms = int(events_retention_s * 1000)
        #: The fleet's sweeper lock (one fleet per Redis).
        self.sweeper_key = SWEEPER_KEY
        self._progress = PROGRESS.on(client)
        self._retry = RETRY.on(client)
        self._interaction = INTERACTION.on(client)
        self._sweep = SWEEP.on(client)
        self._queued = QUEUED.on(client)
        self._claims: Coalescer[_ClaimCall, Claim] = Coalescer(self._claim_all)
        self._finishes: Coalescer[_FinishCall, str | None] = Coalescer(self._finish_all)

    def record_queued(self, job_id: str, payload: str, *, queue: str) -> None:
        """Note a job as queued before it is published (no-op if it has a record already)."""
        self.record_queued_many([(job_id, payload)], queue=queue)

    def record_queued_many(self, jobs: Sequence[tuple[str, str]], *, queue: str) -> None:
        """:meth:`record_queued` for each ``(job_id, payload)``, in one round trip."""
        batch = Batch(self.redis)
        for job_id, payload in jobs:
            RECORD.batch(
                batch,
                keys={"record": job_key(job_id), "due": due_key(queue)},
                args={
                    "job_id": job_id,
                    "payload": payload,
                    "queue": queue,
                    "margin_ms": self.margin_ms,
                    "retention_s": self.retention_s,
                },
            )
        batch.execute()

    def claim(
        self,
        job_id: str,
        token: str,
        *,
        now: str,
        contact_id: str,
        payload: str,
        queue: str,
        expires: str | None = None,
    ) -> Claim:
        """Take the job's lease (or learn it is done or busy), with what routing and
        rendering read: the contact's interactions and the snippet library. One round trip,
        shared with the claims other threads make at the same time."""
        return self._claims(
            _ClaimCall(job_id, token, now, contact_id, payload, queue, expires or "")
        )

    def _claim_all(self, calls: Sequence[_ClaimCall]) -> list[Claim | BaseException]:
        batch = Batch(self.redis)
        for call in calls:
            CLAIM.batch(
                batch,
                keys={
                    "record": job_key(call.job_id),
                    "lease": lease_key(call.job_id),
                    "stats": STATS_KEY,
                    "due": due_key(call.queue),
                    "watermark": watermark_key(call.queue),
                },
                args={
                    "token": call.token,
                    "lease_s": self.lease_s,
                    "retention_s": self.retention_s,
                    "now": call.now,
                    "job_id": call.job_id,
                    "payload": call.payload,
                    "queue": call.queue,
                    "expires": call.expires,
                },
            )
            batch.command("HGETALL", interactions_key(call.contact_id))
        batch.command("HGETALL", SNIPPETS_KEY)
        replies = batch.execute(raise_on_error=False)
        snippets_reply = replies[-1]
        if isinstance(snippets_reply, Exception):
            return [snippets_reply] * len(calls)
        snippets = {text(k): text(v) for k, v in snippets_reply.items()}
        claims: list[Claim | BaseException] = []
        for answer, interactions in zip(replies[0:-1:2], replies[1:-1:2], strict=True):
            failed = next((r for r in (answer, interactions) if isinstance(r, Exception)), None)
            claims.append(failed or _claim_of(answer, interactions, snippets))
        return claims

    def save_progress(
        self, job_id: str, token: str, *, attempts: int, parts: dict[int, list[str]], queue: str
    ) -> bool:
        """Record attempts and accepted parts, and renew the lease; False if it is not ours."""
        done = self._progress(
            keys={"record": job_key(job_id), "lease": lease_key(job_id), "due": due_key(queue)},
            args={
                "token": token,
                "attempts": attempts,
                "parts": json.dumps(parts),
                "lease_s": self.lease_s,
                "job_id": job_id,
            },
        )
        return bool(done)

    def schedule_retry(
        self,
        job_id: str,
        token: str,
        *,
        attempts: int,
        parts: dict[int, list[str]],
        after_s: float,
        queue: str,
    ) -> bool:
        """Hand the lease back and make the job due ``after_s`` from now; False if the lease
        is not ours."""
        done = self._retry(
            keys={"record": job_key(job_id), "lease": lease_key(job_id), "due": due_key(queue)},
            args={
                "token": token,
                "attempts": attempts,
                "parts": json.dumps(parts),
                "after_ms": int(after_s * 1000),
                "job_id": job_id,
            },
        )
        return bool(done)

    def finish(
        self,
        event: OutcomeEvent,
        token: str,
        *,
        key: str,
        parts: dict[int, list[str]],
        queue: str,
        learned: Learned | None = None,
    ) -> str | None:
        """Write the terminal state of the job ``key`` and append ``event``; None if the job
        had finished already, or another attempt holds its lease. What the job teaches the
        webhooks (``learned``) is written in the same round trip, which is shared with the
        finishes other threads make at the same time."""
        return self._finishes(_FinishCall(event, token, key, parts, queue, learned))

    def _finish_all(self, calls: Sequence[_FinishCall]) -> list[str | BaseException | None]:
        batch = Batch(self.redis)
        spans = []
        for call in calls:
            start, event, parts = len(batch), call.event, call.parts
            FINISH.batch(
                batch,
                keys={
                    "record": job_key(call.key),
                    "lease": lease_key(call.key),
                    "events": self.events_stream,
                    "due": due_key(call.queue),
                },
                args={
                    "token": call.token,
                    "outcome": event.data.outcome,
                    "attempts": event.data.attempts,
                    "parts": json.dumps(parts),
                    "retention_s": self.retention_s,
                    "job_id": call.key,
                    "event": event.event,
                    "entry_job_id": event.job_id,
                    "data": event.data.model_dump_json(),
                    "keep_ms": self.events_keep_ms,
                },
            )
            if call.learned is not None:
                ids = [i for k in sorted(parts) for i in parts[k]]
                self._learn(batch, call.learned, call.key, ids)
            spans.append((start, len(batch)))
        replies = batch.execute(raise_on_error=False)
        results: list[str | BaseException | None] = []
        for start, end in spans:
            failed = next((r for r in replies[start:end] if isinstance(r, Exception)), None)
            entry = replies[start]
            results.append(failed or (text(entry) if entry else None))
        return results

    def _learn(self, batch: Batch, learned: Learned, job_id: str, message_ids: list[str]) -> None:
        """Add to ``batch`` the writes of what a job teaches the webhooks."""
        for channel_id, identity, identifier in learned.identities:
            known = json.dumps({"contact_id": learned.contact_id, "identifier": identifier})
            batch.command("SET", identity_key(channel_id, identity), known, "EX", self.retention_s)
        if learned.sent_to is None:
            return
        channel_id, recipient = learned.sent_to
        for message_id in message_ids:
            SENT.batch(
                batch,
                keys={
                    "message": message_key(channel_id, message_id),
                    "sent": sent_key(channel_id, recipient),
                    "statuses": self.status_stream,
                },
                args={"job_id": job_id, "message_id": message_id, "keep_ms": self.events_keep_ms},
            )

    def attempts(self, job_id: str) -> int:
        """Tries made at the job's whole message so far, by its record."""
        return int(text(self.redis.hget(job_key(job_id), "attempts") or 0))

    # -- the sweeper's --------------------------------------------------------------------

    def due_ids(self, queue: str, *, limit: int) -> list[str]:
        """Ids of the queue's jobs whose due time has passed, oldest first."""
        seconds, micros = self.redis.time()  # the scripts' clock, not this machine's
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        found = self.redis.zrangebyscore(due_key(queue), "-inf", now_ms, start=0, num=limit)
        return [text(v) for v in found]

    def sweep(self, queue: str, ids: list[str], *, slack_s: float, redis_broker: bool) -> list[Due]:
        """The jobs among ``ids`` to publish (each made due again a margin later)."""
        if not ids:
            return []
        reply = self._sweep(
            keys={
                "due": due_key(queue),
                "watermark": watermark_key(queue),
                "queue": queue,
                "jobs": [key for i in ids for key in (job_key(i), lease_key(i))],
            },
            args={
                "margin_ms": self.margin_ms,
                "slack_ms": int(slack_s * 1000),
                "redis_broker": "1" if redis_broker else "0",
                "ids": ids,
            },
        )
        items = [text(v) for v in reply]
        return [
            Due(kind, job_id, payload, expires or None, int(due_ms))
            for kind, job_id, payload, expires, due_ms in zip(*[iter(items)] * 5, strict=True)
        ]

    def mark_queued(self, queue: str, published: list[Due], *, redis_broker: bool) -> None:
        """Note jobs just published again as queued from now, each unless it was claimed
        since the sweep (its due time moved): a worker may have run it already."""
        if published:
            self._queued(
                keys={"due": due_key(queue), "records": [job_key(d.job_id) for d in published]},
                args={
                    "margin_ms": self.margin_ms,
                    "redis_broker": "1" if redis_broker else "0",
                    "entries": [v for d in published for v in (d.job_id, d.due_ms)],
                },
            )

    def unacked_job_ids(self) -> set[str]:
        """Keys of the jobs whose messages kombu holds as delivered but unacked (a worker
        has them): the job's job_id, and its Celery task id."""
        ids: set[str] = set()
        for raw in self.redis.hvals(KOMBU_UNACKED_KEY):
            try:
                envelope = json.loads(raw)[0]
                ids.add(str(envelope["headers"]["id"]))
                body = json.loads(base64.b64decode(envelope["body"]))
                job = body[1].get("job") if isinstance(body, list) else None
            except (ValueError, KeyError, IndexError, TypeError, AttributeError):
                continue
            if isinstance(job, dict) and isinstance(job.get("job_id"), str):
                ids.add(job["job_id"])
        return ids

    def hold_sweeper(self, owner: str, ttl_s: float, *, queue: str = "") -> bool:
        """Take or keep a sweeper's lock for ``owner``: the fleet's (dead consumers'
        in-flight lists), or that of one ``queue`` (fleets of other queues on the same
        Redis sweep their own); False while another holds it."""
        key = self._sweeper_key(queue)
        ttl_ms = int(ttl_s * 1000)
        if self.redis.set(key, owner, nx=True, px=ttl_ms):
            return True
        if text(self.redis.get(key) or "") == owner:
            self.redis.pexpire(key, ttl_ms)
            return True
        return False

    def release_sweeper(self, owner: str, *, queue: str = "") -> None:
        """Let go of a sweeper's lock, if ``owner`` holds it."""
        key = self._sweeper_key(queue)
        if text(self.redis.get(key) or "") == owner:
            self.redis.delete(key)

    def _sweeper_key(self, queue: str) -> str:
        return f"{self.sweeper_key}:{queue}" if queue else self.sweeper_key

    # -- counters, dead letters, interactions ---------------------------------------------

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
