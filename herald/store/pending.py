"""Pending jobs: recorded when enqueued, cleared when a worker claims them.

The record lets the reaper (:mod:`herald.store.reaper`) find jobs the broker lost: a pending
job older than the visibility timeout that no worker holds and that can no longer be in
its queue (docs/delivery.md#the-reaper-jobs-the-broker-lost). ``lua/record.lua`` writes the
job's record in state ``pending`` and its entry in the queue's pending set;
``lua/suspects.lua`` and ``lua/take.lua`` find and take the lost ones.

The claim and finish scripts of :mod:`herald.store.records` clear a job's entry, and the
claim moves the queue's watermark (the newest enqueue time of any claimed job). They
declare the index's keys in their headers and take them from :class:`PendingJobs`, so
every key a script touches is in its KEYS. Why the index keeps a module of its own rather
than joining the records: what reads it is the reaper, whose rules (the watermark, kombu's
unacked hash) the worker's claim and finish do not need; and ``store.pending`` is the
entry point the producer and the reaper already use.
"""

from __future__ import annotations

import base64
import json

import redis

from herald.store.decode import text
from herald.store.keys import KOMBU_UNACKED_KEY, job_key, pending_key, watermark_key
from herald.store.scripts import RECORD, SUSPECTS, TAKE


class PendingJobs:
    """The pending entries of one queue."""

    def __init__(self, client: redis.Redis, *, queue: str, retention_s: int) -> None:
        self.redis = client
        self.key = pending_key(queue)
        self.watermark_key = watermark_key(queue)
        self.retention_s = retention_s
        self._record = RECORD.on(client)
        self._suspects = SUSPECTS.on(client)
        self._take = TAKE.on(client)

    def record(self, job_id: str, payload: str) -> None:
        """Note a job as pending before it is published (no-op if it has a record already)."""
        self._record(
            keys={"record": job_key(job_id), "pending": self.key},
            args={"job_id": job_id, "payload": payload, "retention_s": self.retention_s},
        )

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
            keys={"pending": self.key, "watermark": self.watermark_key, "queue": queue_key},
            args={
                "min_age_ms": int(min_age_s * 1000),
                "slack_ms": int(slack_s * 1000),
                "limit": limit,
            },
        )
        items = [text(v) for v in reply]
        held = self.unacked_job_ids() if items else set()
        suspects = [
            (job_id, score)
            for job_id, score in zip(items[0::2], items[1::2], strict=True)
            if job_id not in held
        ]
        if not suspects:
            return []
        reply = self._take(
            keys={"pending": self.key, "records": [job_key(job_id) for job_id, _ in suspects]},
            args={"suspects": [v for pair in suspects for v in pair]},
        )
        taken = [text(v) for v in reply]
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
