"""The sweeper: every job not finished is published again when its record says it is due.

The job record is the source of truth (:mod:`herald.store.records`): each job not finished
is in its queue's due set with the time it next needs a look. The sweeper, run by one
worker of the fleet at a time (a Redis lock), reads the due jobs about once a second and
publishes again (docs/delivery.md#the-sweeper):

- a retry whose wait is over: Herald schedules its own retries, so no message waits in a
  worker's memory (no ETA, no countdown) and the broker's visibility timeout plays no part;
- a job cut off mid-send: ``sending`` with no lease left, once its lease has ended by a
  margin (its worker died; the next claim is in doubt);
- on a Redis broker, the messages a dead consumer had taken into its in-flight list
  (:mod:`herald.store.inflight`) go back at the head of their queue;
- on a Redis broker, a queued job the broker lost: one that has waited a margin, is in no
  worker's unacked messages, and can no longer be in its queue (the queue is empty, or the
  job is well behind the newest claimed: a queue is consumed in order), as when a worker
  consuming several queues (kombu's BRPOP) was killed between popping it and recording it
  as unacked. A broker that keeps its queues (RabbitMQ) never loses a queued message to a worker's
  death, so there a queued job is never taken for lost.

A copy published while the original was not lost after all is harmless: the record lets
only one send through and only one event out.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import redis

from herald.store import inflight
from herald.store.records import Due, JobRecords

log = logging.getLogger("herald.sweeper")

#: Seconds between sweeps (a retry is published at most about this late).
SWEEP_INTERVAL_S = 1.0
#: How long the sweeper's lock lasts without renewal (a dead sweeper's is taken over then).
LOCK_TTL_S = 10.0
#: How far behind the newest claimed job a queued one must be, while its queue is not
#: empty, to be taken for lost (covers prefetch and producers publishing out of order).
SLACK_S = 10.0
#: Due jobs read per queue and sweep.
BATCH = 500

#: Publishes a job again: (job_id, job, queue, expires).
Publish = Callable[[str, dict[str, Any], str, datetime | None], None]


class Sweeper:
    """Publishes due retries and lost jobs again, for each queue whose sweeper lock it
    holds (one sweeper per queue across the fleet)."""

    def __init__(
        self,
        records: JobRecords,
        publish: Publish,
        *,
        queues: Sequence[str],
        redis_broker: bool,
        broker: redis.Redis | None = None,
        interval_s: float = SWEEP_INTERVAL_S,
    ) -> None:
        self.records = records
        #: The Redis broker, whose dead consumers' in-flight lists go back on their queues.
        self.broker = broker
        self.publish = publish
        self.queues = tuple(queues)
        self.redis_broker = redis_broker
        self.interval_s = interval_s
        self.owner = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        """One sweep (lock or not): dead consumers' in-flight messages back on their queues,
        then every queue's due jobs; how many jobs were published."""
        self._recover()
        return sum(self._sweep(queue) for queue in self.queues)

    def _locked_sweep(self) -> None:
        """One sweep of what this worker holds the locks of: the fleet's (in-flight lists),
        and each of its queues' (another fleet on the same Redis sweeps its own queues)."""
        if self.records.hold_sweeper(self.owner, LOCK_TTL_S):
            self._recover()
        for queue in self.queues:
            if self.records.hold_sweeper(self.owner, LOCK_TTL_S, queue=queue):
                self._sweep(queue)

    def _recover(self) -> None:
        if self.broker is not None:
            moved = inflight.recover(self.broker)
            if moved:
                log.warning("put %d message(s) of dead consumers back on their queues", moved)

    def _sweep(self, queue: str) -> int:
        due = self.records.sweep(
            queue,
            self.records.due_ids(queue, limit=BATCH),
            slack_s=SLACK_S,
            redis_broker=self.redis_broker,
        )
        lost = [d for d in due if d.kind == "lost"]
        if lost and self.redis_broker:
            held = self.records.unacked_job_ids()  # a worker has these: not lost
            due = [d for d in due if d.kind == "publish" or d.job_id not in held]
        published = [item for item in due if self._publish(item, queue)]
        self.records.mark_queued(queue, published, redis_broker=self.redis_broker)
        return len(published)

    def _publish(self, item: Due, queue: str) -> bool:
        try:
            job = json.loads(item.payload)
            expires = datetime.fromisoformat(item.expires) if item.expires else None
        except ValueError:
            log.error("job %s: its record holds no readable payload; not published", item.job_id)
            return False
        if item.kind == "lost":
            log.warning("job %s was lost (broker or worker); publishing it again", item.job_id)
            self.records.count("republished")
        self.publish(item.job_id, job, queue, expires)
        return True

    def start(self) -> threading.Thread:
        """Sweep in a daemon thread, whenever this worker holds the lock, until :meth:`stop`."""

        def loop() -> None:
            while not self._stop.wait(self.interval_s):
                try:
                    self._locked_sweep()
                except Exception:  # an outage or a bug must not kill the thread
                    log.exception("sweep failed; trying again")
            for queue in ("", *self.queues):
                self.records.release_sweeper(self.owner, queue=queue)

        self._thread = threading.Thread(target=loop, name="herald-sweeper", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self) -> None:
        """End the sweeping thread (and hand the lock back)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
