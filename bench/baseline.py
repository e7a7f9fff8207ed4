"""The bare Celery app the benchmark compares Herald with: ``celery -A bench.baseline worker``.

Two tasks, on Celery's defaults (early ack, prefetch 4) with task events on, as Herald
runs them:

- ``bench.noop`` only records its completion (the floor of Celery on Redis);
- ``bench.http`` POSTs to the provider with a pooled ``httpx.Client`` (a free list: one
  client per concurrent call, never built per call, never shared by every slot, all
  sharing one SSL context, which costs ~17 ms of CPU to build), then records its
  completion: the least a send can do.

A completion is one ``XADD`` to the stream ``bench:done``, as Herald's outcome is one
entry in ``herald:events``. Read from the environment: ``BENCH_BROKER_URL``,
``BENCH_PROVIDER_URL`` (the URL to POST to) and ``BENCH_CONCURRENCY`` (to size pools).
"""

from __future__ import annotations

import os
import queue
import ssl
from typing import Any

import httpx
import redis
from celery import Celery

#: The stream each bare task appends its completion to.
DONE_STREAM = "bench:done"

app = Celery("bench", broker=os.environ.get("BENCH_BROKER_URL"), set_as_current=False)
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    result_backend=None,
    worker_send_task_events=True,
    task_send_sent_event=True,
    worker_hijack_root_logger=False,
)

_slots = int(os.environ.get("BENCH_CONCURRENCY", "100"))
_redis = redis.Redis(
    connection_pool=redis.BlockingConnectionPool.from_url(
        os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/0"),
        max_connections=min(max(_slots, 4), 100),
        timeout=30,
    )
)
_clients: queue.LifoQueue[httpx.Client] = queue.LifoQueue()
_ssl: ssl.SSLContext | None = None


def _done(job: dict[str, Any]) -> None:
    _redis.xadd(DONE_STREAM, {"job_id": str(job.get("job_id", ""))})


def _new_client() -> httpx.Client:
    global _ssl
    if _ssl is None:
        _ssl = ssl.create_default_context()
    return httpx.Client(timeout=30, verify=_ssl)


@app.task(name="bench.noop")  # type: ignore[untyped-decorator]
def noop(job: dict[str, Any]) -> None:
    """Record the completion only."""
    _done(job)


@app.task(name="bench.http")  # type: ignore[untyped-decorator]
def http(job: dict[str, Any]) -> None:
    """POST the job's text to the provider, then record the completion."""
    try:
        client = _clients.get_nowait()
    except queue.Empty:
        client = _new_client()
    try:
        chat = job["contact"]["channels"][0]["identifier"]
        answer = client.post(
            os.environ["BENCH_PROVIDER_URL"], json={"chat_id": chat, "text": job["message"]["text"]}
        )
        answer.raise_for_status()
    finally:
        _clients.put(client)
    _done(job)
