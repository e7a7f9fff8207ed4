"""Reading the outcome stream: the newest events, following new ones, finding one job's
event, and reading through a consumer group.

One place that turns Redis stream replies into :class:`OutcomeEvent` objects, for the CLI,
the demo, producers waiting for an outcome and downstream consumers.

A blocking read (``XREAD``/``XREADGROUP`` with ``BLOCK``) must be shorter than the client's
socket timeout, or the client gives up first and raises ``TimeoutError`` on a quiet stream
(redis-py's default socket timeout is 5 s): :func:`block_ms_for` picks a block that fits.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any, cast

import redis
from redis.connection import AbstractConnection

from herald.contract.events import OutcomeEvent
from herald.store.decode import text, text_map

Entry = tuple[str, OutcomeEvent]

#: The longest block of one read; a quiet stream then costs one round trip per 5 s.
MAX_BLOCK_MS = 5000
#: Entries read per round trip when scanning the stream for one job.
SCAN_PAGE = 1000
#: How far before a job's first_seen its event is looked for first: the record's times come
#: from a worker's clock, the entry ids from Redis's.
CLOCK_SKEW_MS = 10 * 60 * 1000
#: The states after which a job gets no more events.
FINISHED = frozenset({"sent", "failed"})
#: redis-py's socket timeout when a client sets none (5 s in redis-py 8, none before).
_DEFAULT_SOCKET_TIMEOUT = (
    inspect.signature(AbstractConnection.__init__).parameters["socket_timeout"].default
)


def _entries(raw: Any) -> list[Entry]:
    rows = cast(list[tuple[Any, dict[Any, Any]]], raw or [])
    return [(text(entry_id), OutcomeEvent.from_fields(text_map(f))) for entry_id, f in rows]


def _rows(reply: Any) -> list[tuple[Any, Any]]:
    """The entries of an XREAD/XREADGROUP reply, over its streams."""
    return [row for _, batch in cast(list[Any], reply or []) for row in batch]


def newest(client: redis.Redis, stream: str, count: int) -> list[Entry]:
    """The newest ``count`` events, oldest first."""
    if count <= 0:
        return []
    return list(reversed(_entries(client.xrevrange(stream, count=count))))


def last_id(client: redis.Redis, stream: str) -> str:
    """The id after which new events will come ("0-0" for a stream not yet written)."""
    if not client.exists(stream):
        return "0-0"
    info = client.xinfo_stream(stream)
    return text(info["last-generated-id"])


def block_ms_for(client: redis.Redis, wanted_ms: int = MAX_BLOCK_MS) -> int:
    """A block for ``client``'s reads: at most ``wanted_ms``, and well inside its socket
    timeout (a block as long as the timeout ends in ``TimeoutError`` on a quiet stream)."""
    timeout = client.connection_pool.connection_kwargs.get(
        "socket_timeout", _DEFAULT_SOCKET_TIMEOUT
    )
    if timeout:
        wanted_ms = min(wanted_ms, int(float(timeout) * 1000 * 0.8))
    return max(1, wanted_ms)


def read_after(
    client: redis.Redis, stream: str, after: str, *, block_ms: int, count: int = 100
) -> list[Entry]:
    """Events written after the id ``after``, waiting up to ``block_ms`` for the first."""
    return _entries(_rows(client.xread({stream: after}, block=block_ms, count=count)))


def id_at(moment: datetime) -> str:
    """The stream id just before anything written at ``moment`` (for reads "after" it)."""
    ms = int(moment.timestamp() * 1000)
    return f"{max(0, ms - 1)}-18446744073709551615"


def find_event(
    client: redis.Redis, stream: str, job_id: str, *, since: datetime | None = None
) -> Entry | None:
    """The event of ``job_id`` (the first one, there is only one), or None.

    With ``since`` (when the job was first seen) the stream is read from a little before
    it, then, if the event is not there, the part before that; without it, all of it.
    """
    if since is None:
        return _scan(client, stream, job_id, "-", "+")
    start = max(0, int(since.timestamp() * 1000) - CLOCK_SKEW_MS)
    return _scan(client, stream, job_id, f"{start}-0", "+") or _scan(
        client, stream, job_id, "-", f"({start}-0" if start else "0-0"
    )


def _scan(client: redis.Redis, stream: str, job_id: str, low: str, high: str) -> Entry | None:
    if high == "0-0":
        return None
    while True:
        rows = cast(list[tuple[Any, Any]], client.xrange(stream, low, high, count=SCAN_PAGE))
        for entry_id, raw in rows:
            fields = text_map(raw)
            if fields.get("job_id") == job_id:
                return text(entry_id), OutcomeEvent.from_fields(fields)
        if len(rows) < SCAN_PAGE:
            return None
        low = f"({text(rows[-1][0])}"


def wait_for_event(
    client: redis.Redis,
    stream: str,
    job_id: str,
    timeout: float,
    *,
    record_key: str,
    after: str | datetime | None = None,
) -> OutcomeEvent | None:
    """The event of ``job_id``, waiting up to ``timeout`` seconds for it; None if none came.

    ``after`` is where to read from: a stream id taken before the job was enqueued
    (:func:`last_id`), or when it was enqueued. Without it the job's record
    (``record_key``) says whether the job has finished: if so its event is looked up,
    else new events are read from the stream's end as it was *before* the record was read.
    The record and the event are written in one script, so no event falls in between.
    """
    deadline = time.monotonic() + timeout
    if isinstance(after, datetime):
        start = id_at(after)
    elif after is not None:
        start = after
    else:
        start = last_id(client, stream)
        finished, found = _finished_event(client, stream, job_id, record_key)
        if finished:  # no event comes after this; None if it was trimmed away
            return found[1] if found else None
    block = block_ms_for(client)
    while (left := deadline - time.monotonic()) > 0:
        for entry_id, event in read_after(
            client, stream, start, block_ms=max(1, min(block, int(left * 1000)))
        ):
            start = entry_id
            if event.job_id == job_id:
                return event
    return None


def _finished_event(
    client: redis.Redis, stream: str, job_id: str, record_key: str
) -> tuple[bool, Entry | None]:
    """Whether the job's record says it has finished, and then its event."""
    state, first_seen = client.hmget(record_key, ["state", "first_seen"])
    if state is None or text(state) not in FINISHED:
        return False, None
    return True, find_event(client, stream, job_id, since=parse_time(first_seen))


def parse_time(value: Any) -> datetime | None:
    """A record's ISO 8601 time, or None when absent or unreadable."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(text(value))
    except ValueError:
        return None


class ConsumerGroup:
    """One consumer of a consumer group on the outcome stream, reading at least once.

    Each event goes to one consumer of the group; it stays *pending* (in the group's
    pending entries list) until that consumer acks it. :meth:`read` returns, in this order:
    this consumer's own pending events (left unacked by an earlier run of the same name,
    or read just before a lost connection), events of other consumers idle for
    ``claim_idle_ms`` (taken over with XAUTOCLAIM: their consumer died, or is stuck), and
    new events. So an event can be handled twice (a slow consumer's is taken over, a crash
    between handling and :meth:`ack`): use its ``job_id`` as the dedupe key, since a job
    has exactly one event (docs/contract.md#consuming-outcome-events).
    """

    def __init__(
        self,
        client: redis.Redis,
        stream: str,
        group: str,
        consumer: str,
        *,
        claim_idle_ms: int = 60_000,
    ) -> None:
        self.client = client
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self.claim_idle_ms = claim_idle_ms
        self._backlog = True  # own pending entries first
        self._own_cursor = "0-0"
        self._next_claim = 0.0

    def create(self, start: str = "$") -> bool:
        """Create the group (and the stream) if missing, reading from ``start`` ("$": new
        events only, "0": the whole stream); False if the group existed."""
        try:
            self.client.xgroup_create(self.stream, self.group, id=start, mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
            return False
        return True

    def read(self, count: int = 100, block_ms: int = MAX_BLOCK_MS) -> list[Entry]:
        """The next events for this consumer (see the class); waits up to ``block_ms``
        (kept inside the client's socket timeout and the claim interval) for new ones."""
        try:
            return self._read(count, block_ms)
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # The group is gone (deleted, or Redis restarted empty): make it again.
            self.create()
            self.recover()
            return []

    def _read(self, count: int, block_ms: int) -> list[Entry]:
        if self._backlog:
            own = self._own(count)
            if own:
                return own
            self._backlog = False
        if time.monotonic() >= self._next_claim and self._claim(count):
            return self._read(count, block_ms)
        block = min(block_ms_for(self.client, block_ms), max(1, self.claim_idle_ms // 2))
        reply = self.client.xreadgroup(
            self.group, self.consumer, {self.stream: ">"}, count=count, block=block
        )
        return _entries(_rows(reply))

    def _own(self, count: int) -> list[Entry]:
        """This consumer's pending entries after the cursor; trimmed ones are acked."""
        while True:
            reply = self.client.xreadgroup(
                self.group, self.consumer, {self.stream: self._own_cursor}, count=count
            )
            rows = _rows(reply)
            if not rows:
                self._own_cursor = "0-0"
                return []
            self._own_cursor = text(rows[-1][0])
            # An entry trimmed from the stream while pending reads as empty: ack it.
            self.ack(text(entry_id) for entry_id, fields in rows if not fields)
            live = [row for row in rows if row[1]]
            if live:
                return _entries(live)

    def _claim(self, count: int) -> bool:
        """Take over entries idle longer than ``claim_idle_ms``; True if any were taken."""
        self._next_claim = time.monotonic() + self.claim_idle_ms / 2000
        # JUSTID: claimed entries are then read as this consumer's own (trimmed ones read
        # as empty on Redis 6.2 and 7 alike). redis-py returns no cursor with JUSTID, so
        # each sweep starts at the top; entries just claimed are not idle, so it moves on.
        reply = self.client.xautoclaim(
            self.stream,
            self.group,
            self.consumer,
            min_idle_time=self.claim_idle_ms,
            start_id="0-0",
            count=count,
            justid=True,
        )
        if not reply:
            return False
        self._backlog = True
        self._own_cursor = "0-0"
        return True

    def ack(self, entry_ids: Iterable[str]) -> int:
        """Acknowledge handled entries; they leave the group's pending list."""
        ids = list(entry_ids)
        if not ids:
            return 0
        return int(self.client.xack(self.stream, self.group, *ids))

    def recover(self) -> None:
        """Read this consumer's own pending entries again first (after a lost
        connection, a reply may have been lost on the way)."""
        self._backlog = True
        self._own_cursor = "0-0"
