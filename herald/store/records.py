"""Delivery state in Redis: the job record, its lease and the outcome event, changed atomically.

A job's record moves ``sending`` → (``retrying`` → ``sending`` ...) → ``sent`` | ``failed``.
Each change is one Lua script, so the record and the outcome stream can never disagree:

- :meth:`DeliveryStore.claim` takes the job's lease (one worker talks to the provider for
  a job at a time) unless the job is already finished or leased by another copy, and
  returns the record together with the contact's recorded interactions (one round trip).
- :meth:`DeliveryStore.save_progress` records the parts already accepted, so a retry
  never resends them.
- :meth:`DeliveryStore.finish` writes the terminal state and appends the outcome event
  in the same script: only the first terminal transition of a ``job_id`` emits.

A claim that finds the record ``sending`` with no live lease means an earlier attempt was
cut off after it claimed the job: the request may have left, so the claim is *in doubt*.
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

_CLAIM = """
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'sent' or state == 'failed' then
  return {'done', state}
end
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then
  return {'busy', tostring(redis.call('TTL', KEYS[2]))}
end
local in_doubt = 0
if state == 'sending' and not holder then in_doubt = 1 end
redis.call('SET', KEYS[2], ARGV[1], 'EX', tonumber(ARGV[2]))
redis.call('HSET', KEYS[1], 'state', 'sending')
redis.call('HSETNX', KEYS[1], 'first_seen', ARGV[4])
if in_doubt == 1 then
  redis.call('HINCRBY', KEYS[1], 'in_doubt', 1)
  redis.call('HINCRBY', KEYS[3], 'in_doubt', 1)
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
local enqueued = redis.call('ZSCORE', KEYS[4], ARGV[5])
if enqueued then
  redis.call('ZREM', KEYS[4], ARGV[5])
  if tonumber(enqueued) > tonumber(redis.call('GET', KEYS[5]) or 0) then
    redis.call('SET', KEYS[5], enqueued)
  end
end
local rec = redis.call('HMGET', KEYS[1], 'attempts', 'first_seen', 'parts')
return {'claimed', rec[1] or '0', rec[2], rec[3] or '{}', tostring(in_doubt)}
"""

_PROGRESS = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'attempts', ARGV[2], 'parts', ARGV[3], 'state', ARGV[4])
if ARGV[4] == 'retrying' then
  redis.call('DEL', KEYS[2])
else
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[5]))
end
return 1
"""

_FINISH = """
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'sent' or state == 'failed' then return false end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'attempts', ARGV[3], 'parts', ARGV[4])
redis.call('HDEL', KEYS[1], 'payload')
redis.call('ZREM', KEYS[4], ARGV[7])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[5]))
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return redis.call('XADD', KEYS[3], '*', 'event', ARGV[6], 'job_id', ARGV[7], 'data', ARGV[8])
"""

_INTERACTION = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  local prev = cjson.decode(old)
  if tonumber(prev['at_ms']) >= tonumber(ARGV[2]) then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
"""


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
        self._claim = client.register_script(_CLAIM)
        self._progress = client.register_script(_PROGRESS)
        self._finish = client.register_script(_FINISH)
        self._interaction = client.register_script(_INTERACTION)
        self.pending = PendingJobs(client, queue=queue, retention_s=retention_s)

    def claim(self, job_id: str, token: str, *, now: str, contact_id: str) -> Claim:
        """Take the job's lease (or learn it is done or busy), with what routing and
        rendering read: the contact's interactions and the snippet library. One round trip."""
        pipe = self.redis.pipeline(transaction=False)
        self._claim(
            keys=[
                job_key(job_id),
                lease_key(job_id),
                STATS_KEY,
                self.pending.key,
                self.pending.watermark_key,
            ],
            args=[token, self.lease_s, self.retention_s, now, job_id],
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
            keys=[job_key(job_id), lease_key(job_id)],
            args=[
                token,
                attempts,
                json.dumps(parts),
                "retrying" if release else "sending",
                self.lease_s,
            ],
        )
        return bool(done)

    def finish(
        self, event: OutcomeEvent, token: str, *, key: str, parts: dict[int, list[str]]
    ) -> str | None:
        """Write the terminal state and append ``event``; None if the job had finished already."""
        entry = self._finish(
            keys=[job_key(key), lease_key(key), self.events_stream, self.pending.key],
            args=[
                token,
                event.data.outcome,
                event.data.attempts,
                json.dumps(parts),
                self.retention_s,
                event.event,
                event.job_id,
                event.data.model_dump_json(),
            ],
        )
        return text(entry) if entry else None

    def count(self, name: str) -> None:
        """Add one to a fleet-wide counter."""
        self.redis.hincrby(STATS_KEY, name, 1)

    def stats(self) -> dict[str, int]:
        """Fleet-wide counters (``in_doubt``: claims that found an interrupted send)."""
        return {text(k): int(v) for k, v in self.redis.hgetall(STATS_KEY).items()}

    def dead_letter(self, task: str, raw: Any, reason: str) -> None:
        """Keep a refused payload, as JSON text, in the dead-letter stream."""
        try:
            shown = json.dumps(raw, ensure_ascii=False)
        except (TypeError, ValueError):
            shown = repr(raw)
        self.redis.xadd(DEAD_STREAM, {"task": task, "raw": shown, "reason": reason})

    def record_interaction(
        self, contact_id: str, channel_id: str, identifier: str, at_ms: int, at: str
    ) -> bool:
        """Remember an inbound message; an older one never overwrites a newer one."""
        value = json.dumps({"at_ms": at_ms, "at": at, "identifier": identifier})
        return bool(
            self._interaction(keys=[interactions_key(contact_id)], args=[channel_id, at_ms, value])
        )
