"""``python -m bench.enqueue JOBS BATCH``: time Herald's ``enqueue_many`` in this process.

Configured by the ``HERALD_*`` environment the benchmark sets. Prints one JSON line:
``{"status": "ok", "jobs", "seconds", "jobs_per_s", "cpu_s_per_job"}``, or a status of
``n/a (...)`` when this Herald has no ``enqueue_many``.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from typing import Any


def main(argv: list[str]) -> dict[str, Any]:
    count, batch = int(argv[0]), int(argv[1])
    from bench.run import make_job
    from herald import producer
    from herald.worker import app

    enqueue_many = getattr(producer, "enqueue_many", None)
    if enqueue_many is None:
        return {"status": "n/a (no herald.producer.enqueue_many)"}
    run = uuid.uuid4().hex[:8]
    jobs = [make_job(run, n) for n in range(count)]
    # One job first: connections are opened and caches filled outside the timed call.
    enqueue_many(app, [make_job(run + "-warm", 0)], batch_size=batch)
    cpu, started = time.process_time(), time.perf_counter()
    enqueue_many(app, jobs, batch_size=batch)
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    return {
        "status": "ok",
        "jobs": count,
        "seconds": round(seconds, 4),
        "jobs_per_s": round(count / seconds, 1),
        "cpu_s_per_job": round(cpu / count, 7),
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])), flush=True)
