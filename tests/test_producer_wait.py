"""``herald.producer.wait_for_outcome``: a producer waits for one job's outcome event and
misses none, however early the worker wrote it; through a real worker."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from celery import Celery

from herald.producer import enqueue, wait_for_outcome
from herald.store import stream
from tests.conftest import Outcomes, make_job

pytestmark = pytest.mark.usefixtures("worker")


def test_an_event_written_before_the_call_is_found(
    celery_app: Any, rclient: redis.Redis[Any], outcomes: Outcomes
) -> None:
    job = make_job()
    enqueue(celery_app, job)
    outcomes.wait(job["job_id"], settle=0)  # the event is there before anyone waits

    started = time.monotonic()
    by_app = wait_for_outcome(celery_app, job["job_id"], timeout=10)
    by_client = wait_for_outcome(rclient, job["job_id"], timeout=10)

    assert time.monotonic() - started < 2
    assert by_app is not None and by_app.job_id == job["job_id"]
    assert by_app == by_client and by_app.event == "message.sent"


def test_an_event_written_while_waiting_is_returned(celery_app: Any) -> None:
    job = make_job(failure_branch=True)
    threading.Timer(0.5, enqueue, args=(celery_app, job)).start()

    event = wait_for_outcome(celery_app, job["job_id"], timeout=20)

    assert event is not None and event.job_id == job["job_id"]
    assert event.data.next == "success"


def test_a_plain_producer_waits_from_the_position_it_took_before_enqueueing(
    redis_url: str, settings: Any, rclient: redis.Redis[Any]
) -> None:
    producer = Celery("any-service", broker=redis_url, set_as_current=False)
    job = make_job()
    position = stream.last_id(rclient, settings.events_stream)
    enqueued_at = datetime.now(UTC)
    producer.send_task(
        "herald.send_message",
        kwargs={"job": job},
        queue=settings.queue,
        kwargsrepr=f"{{'job': <job {job['job_id']}>}}",
    )
    try:
        from_position = wait_for_outcome(rclient, job["job_id"], 20, after=position)
        from_time = wait_for_outcome(producer, job["job_id"], 5, after=enqueued_at)
    finally:
        producer.close()

    assert from_position is not None and from_position == from_time


def test_no_event_is_none_after_the_timeout_even_with_a_short_socket_timeout(
    redis_url: str,
) -> None:
    # A block as long as the socket timeout would raise TimeoutError on a quiet stream.
    client: redis.Redis[Any] = redis.Redis.from_url(redis_url, socket_timeout=1)
    try:
        started = time.monotonic()
        assert wait_for_outcome(client, f"never-{uuid.uuid4().hex}", timeout=2.5) is None
        assert 2.4 < time.monotonic() - started < 5
    finally:
        client.close()
