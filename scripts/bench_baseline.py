"""Baseline Celery tasks for scripts/bench.py, on the same broker and pool as Herald.

``bench.noop`` only records its completion; ``bench.http`` POSTs the job to the provider
with a pooled httpx client (the least a send can do), then records its completion.
"""

from __future__ import annotations

import os
import queue
from typing import Any

import httpx
import redis
from celery import Celery

app = Celery("bench", broker=os.environ["BENCH_BROKER_URL"], set_as_current=False)
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    worker_send_task_events=True,
    broker_transport_options={"max_connections": 200},
)
_redis = redis.Redis.from_url(os.environ["BENCH_BROKER_URL"], max_connections=100)
_clients: queue.LifoQueue[httpx.Client] = queue.LifoQueue()


def _done(job_id: str) -> None:
    _redis.xadd("bench:done", {"job_id": job_id})


@app.task(name="bench.noop")  # type: ignore[untyped-decorator]
def noop(job: dict[str, Any]) -> None:
    _done(job["job_id"])


@app.task(name="bench.http")  # type: ignore[untyped-decorator]
def http(job: dict[str, Any]) -> None:
    try:
        client = _clients.get_nowait()
    except queue.Empty:
        client = httpx.Client(timeout=15)
    try:
        client.post(os.environ["BENCH_HTTP_URL"], json={"chat_id": job["job_id"], "text": "hi"})
    finally:
        _clients.put(client)
    _done(job["job_id"])
