"""The reaper: publish again the jobs the broker lost.

Celery on Redis has one window where a message exists only in a worker's memory: kombu
pops it (BRPOP) and only then records it as unacked. A worker killed in that window loses
the message. Jobs enqueued through :mod:`herald.producer` are recorded as *pending* first;
a worker's claim clears that. A pending job older than the visibility timeout (so a dead
worker's messages are back), held by no worker (not in kombu's unacked messages), and not
in the queue (the queue is empty, or the job is older than the newest claimed one: a queue
is consumed in order) is lost: the reaper publishes it again. A copy that was not lost after all
is harmless: the job's record lets only one send through and only one event out.

Every worker runs a reaper thread; ``lua/take.lua`` hands each lost job to one of them per
sweep (docs/delivery.md#the-reaper-jobs-the-broker-lost).
"""

from __future__ import annotations

import json
import logging
import threading

from celery import Celery

from herald.contract.names import SEND_TASK
from herald.store.records import DeliveryStore

log = logging.getLogger("herald.reaper")

#: Seconds between sweeps.
SWEEP_INTERVAL_S = 15.0
#: How far behind the newest claimed job a pending one must be, while the queue is not
#: empty (covers prefetch and jobs published out of order by several producers).
SLACK_S = 10.0


class Reaper:
    """Finds lost pending jobs and publishes them again."""

    def __init__(
        self, store: DeliveryStore, app: Celery, *, queue: str, min_age_s: float, slack_s: float
    ) -> None:
        self.store = store
        self.app = app
        self.queue = queue
        self.min_age_s = min_age_s
        self.slack_s = slack_s
        self._stop = threading.Event()

    def run_once(self) -> int:
        """One sweep; returns how many jobs were published again."""
        lost = self.store.pending.reap(
            min_age_s=self.min_age_s, slack_s=self.slack_s, queue_key=self.queue
        )
        for job_id, payload in lost:
            log.warning(
                "job %s was lost by the broker before any worker saw it; republishing", job_id
            )
            self.app.send_task(
                SEND_TASK,
                kwargs={"job": json.loads(payload)},
                queue=self.queue,
                kwargsrepr=f"{{'job': <job {job_id}>}}",
            )
            self.store.count("republished")
        return len(lost)

    def start(self, interval_s: float = SWEEP_INTERVAL_S) -> threading.Thread:
        """Sweep every ``interval_s`` in a daemon thread until :meth:`stop`."""

        def loop() -> None:
            while not self._stop.wait(interval_s):
                try:
                    self.run_once()
                except Exception:  # an outage or a bug must not kill the thread
                    log.exception("reaper sweep failed; trying again later")

        thread = threading.Thread(target=loop, name="herald-reaper", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        """End the sweeping thread."""
        self._stop.set()
