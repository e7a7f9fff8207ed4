"""Pending jobs: recorded when enqueued, cleared when a worker claims them.

The record lets the reaper (:mod:`herald.reaper`) find jobs the broker lost: a pending
job older than the visibility timeout that no worker holds and that can no longer be in
its queue. The worker's claim script (:mod:`herald.state`) clears the entry and moves the
queue's watermark (the newest enqueue time of any claimed job).
"""

from __future__ import annotations

import base64
import json

import redis

from herald.store.decode import text
from herald.store.keys import KOMBU_UNACKED_KEY, PENDING_KEY, WATERMARK_KEY, job_key

_RECORD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('HSETNX', KEYS[1], 'state', 'pending') == 1 then
  redis.call('HSET', KEYS[1], 'payload', ARGV[2])
  redis.call('ZADD', KEYS[2], 'NX', now, ARGV[1])
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return now
"""

_SUSPECTS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local before = now - tonumber(ARGV[1])
if redis.call('LLEN', KEYS[3]) > 0 then
  -- Jobs may still wait in the queue: only those well behind the newest claim are gone.
  local watermark = tonumber(redis.call('GET', KEYS[2]) or 0)
  before = math.min(before, watermark - tonumber(ARGV[2]))
end
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', before, 'WITHSCORES', 'LIMIT', 0, ARGV[3])
"""

_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for i = 1, #ARGV - 1, 2 do
  local id, score = ARGV[i], ARGV[i + 1]
  -- Unchanged since it was suspected (no claim, no other reaper): take it.
  if redis.call('ZSCORE', KEYS[1], id) == score then
    local payload = redis.call('HGET', KEYS[2] .. id, 'payload')
    if payload then
      redis.call('ZADD', KEYS[1], 'XX', now, id)
      table.insert(out, id)
      table.insert(out, payload)
    else
      redis.call('ZREM', KEYS[1], id)
    end
  end
end
return out
"""


class PendingJobs:
    """The pending entries of one queue."""

    def __init__(self, client: redis.Redis, *, queue: str, retention_s: int) -> None:
        self.redis = client
        self.key = PENDING_KEY.format(queue=queue)
        self.watermark_key = WATERMARK_KEY.format(queue=queue)
        self.retention_s = retention_s
        self._record = client.register_script(_RECORD)
        self._suspects = client.register_script(_SUSPECTS)
        self._take = client.register_script(_TAKE)

    def record(self, job_id: str, payload: str) -> None:
        """Note a job as pending before it is published (no-op if it has a record already)."""
        self._record(keys=[job_key(job_id), self.key], args=[job_id, payload, self.retention_s])

    def record_many(self, jobs: list[tuple[str, str]]) -> None:
        """:meth:`record` for a batch, in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for job_id, payload in jobs:
            self._record(
                keys=[job_key(job_id), self.key],
                args=[job_id, payload, self.retention_s],
                client=pipe,
            )
        pipe.execute()

    def reap(
        self, *, min_age_s: float, slack_s: float, queue_key: str, limit: int = 100
    ) -> list[tuple[str, str]]:
        """Pending jobs the broker has lost: (job_id, payload) pairs to publish again.

        A job is lost when it was enqueued more than ``min_age_s`` ago (past the visibility
        timeout and kombu's restore sweep), is in no worker's unacked messages, and cannot
        be in the queue: the queue is empty, or the job is more than ``slack_s`` older than
        the newest job a worker has claimed (a queue is consumed in order).
        """
        reply = self._suspects(
            keys=[self.key, self.watermark_key, queue_key],
            args=[int(min_age_s * 1000), int(slack_s * 1000), limit],
        )
        items = [text(v) for v in reply]
        suspects = list(zip(items[0::2], items[1::2], strict=True))
        if not suspects:
            return []
        held = self.unacked_job_ids()
        args = [v for job_id, score in suspects if job_id not in held for v in (job_id, score)]
        if not args:
            return []
        taken = [text(v) for v in self._take(keys=[self.key, job_key("")], args=args)]
        return list(zip(taken[0::2], taken[1::2], strict=True))

    def unacked_job_ids(self) -> set[str]:
        """Job ids of the messages kombu holds as delivered but unacked (a worker has them)."""
        ids: set[str] = set()
        for raw in self.redis.hvals(KOMBU_UNACKED_KEY):
            try:
                envelope = json.loads(raw)[0]
                body = json.loads(base64.b64decode(envelope["body"]))
                job = body[1].get("job") if isinstance(body, list) else None
            except (ValueError, KeyError, IndexError, TypeError, AttributeError):
                continue
            if isinstance(job, dict) and isinstance(job.get("job_id"), str):
                ids.add(job["job_id"])
        return ids
