"""No job is lost: the record is the source of truth, and the sweeper publishes again every
job that is due (a retry whose wait is over, a job its broker or its worker lost), through
a real worker on the real Redis transport.

Losses are made deterministic with the transport's test hook (HERALD_TEST_DROP_SET): the
next message of a task id in that set is dropped right after it is popped, as a worker
killed between kombu's BRPOP and its unacked record would lose it.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from herald.contract.names import SEND_TASK
from herald.producer import enqueue
from herald.store.keys import due_key, job_key
from herald.testing.processes import protocol_v2
from herald.testing.sandbox import Sandbox
from tests.conftest import Outcomes, make_job, sandbox_requests

pytestmark = pytest.mark.usefixtures("worker")


def chat() -> str:
    return str(uuid.uuid4().int % 10**9)


def throttle_once(sandbox: Sandbox, seconds: int) -> None:
    """The provider's next answer asks for a wait longer than the in-call limit."""
    sandbox.fail_next(
        "telegram",
        429,
        {
            "ok": False,
            "error_code": 429,
            "description": "slow",
            "parameters": {"retry_after": seconds},
        },
    )


def wait_retrying(rclient: Any, job_id: str) -> None:
    """Until the job waits for its retry in its record."""
    deadline = time.monotonic() + 10
    while rclient.hget(job_key(job_id), "state") != "retrying":
        assert time.monotonic() < deadline, "the job never waited for its retry"
        time.sleep(0.05)


def drop_next(rclient: Any, settings: Any, task_id: str) -> None:
    """The next message of ``task_id`` is lost between pop and unacked record."""
    rclient.sadd(settings.test_drop_set, task_id)


def test_a_producers_job_lost_on_its_first_delivery_is_published_again_and_sent_once(
    celery_app: Any, settings: Any, sandbox: Sandbox, outcomes: Outcomes, rclient: Any
) -> None:
    chat_id = chat()
    job = make_job([{"channel_id": "tg", "identifier": chat_id}])
    drop_next(rclient, settings, job["job_id"])
    enqueue(celery_app, job, queue=settings.queue)
    event = outcomes.wait(job["job_id"], timeout=30)
    assert event.event == "message.sent"
    assert rclient.sismember(settings.test_drop_set, job["job_id"]) == 0  # it was dropped
    assert len(sandbox_requests(sandbox, "telegram", chat_id=chat_id)) == 1
    assert rclient.zscore(due_key(settings.queue), job["job_id"]) is None


def test_a_retry_lost_on_its_way_back_is_published_again_and_sent(
    celery_app: Any, settings: Any, sandbox: Sandbox, outcomes: Outcomes, rclient: Any
) -> None:
    # Given a job sent by a plain Celery client (no record until its claim), whose provider
    # first asks for a wait longer than the in-call limit,
    chat_id = chat()
    throttle_once(sandbox, 3)
    job = make_job([{"channel_id": "tg", "identifier": chat_id}])
    celery_app.send_task(SEND_TASK, kwargs={"job": job}, queue=settings.queue)
    # when the retry's message, published by the sweeper, is lost too,
    wait_retrying(rclient, job["job_id"])
    drop_next(rclient, settings, job["job_id"])
    # then the sweeper publishes it again once it is found lost, and it is sent.
    event = outcomes.wait(job["job_id"], timeout=40)
    assert (event.event, event.data.attempts) == ("message.sent", 2)
    assert rclient.sismember(settings.test_drop_set, job["job_id"]) == 0
    assert len(sandbox_requests(sandbox, "telegram", chat_id=chat_id)) == 2  # the 429, the send


def test_a_retry_waits_in_the_record_not_in_a_worker(
    celery_app: Any, settings: Any, sandbox: Sandbox, outcomes: Outcomes, rclient: Any
) -> None:
    chat_id = chat()
    throttle_once(sandbox, 3)
    job = make_job([{"channel_id": "tg", "identifier": chat_id}])
    started = time.monotonic()
    celery_app.send_task(SEND_TASK, kwargs={"job": job}, queue=settings.queue)
    wait_retrying(rclient, job["job_id"])
    # While it waits, no message of it is anywhere: not queued, not held unacked.
    assert all(job["job_id"] not in str(m) for m in rclient.lrange(settings.queue, 0, -1))
    assert all(job["job_id"] not in str(m) for m in rclient.hvals("unacked"))
    due = float(rclient.zscore(due_key(settings.queue), job["job_id"]) or 0)
    assert due > time.time() * 1000
    assert outcomes.wait(job["job_id"], timeout=30).event == "message.sent"
    assert time.monotonic() - started >= 3.0


def test_a_job_that_expires_waiting_in_the_backlog_ends_with_an_expired_event(
    settings: Any, outcomes: Outcomes, rclient: Any, sandbox: Sandbox
) -> None:
    chat_id = chat()
    job = make_job([{"channel_id": "tg", "identifier": chat_id}], failure_branch=True)
    message = protocol_v2(SEND_TASK, {"job": job}, settings.queue)
    message["headers"]["expires"] = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
    rclient.lpush(settings.queue, json.dumps(message))
    event = outcomes.wait(job["job_id"])
    assert (event.event, event.data.next) == ("message.failed", "failure")
    assert event.data.error is not None
    assert (event.data.error.code, event.data.error.retryable) == ("expired", False)
    assert sandbox_requests(sandbox, "telegram", chat_id=chat_id) == []


def test_a_job_that_expires_between_retries_ends_with_an_expired_event(
    celery_app: Any, settings: Any, sandbox: Sandbox, outcomes: Outcomes
) -> None:
    chat_id = chat()
    throttle_once(sandbox, 4)
    job = make_job([{"channel_id": "tg", "identifier": chat_id}])
    celery_app.send_task(SEND_TASK, kwargs={"job": job}, queue=settings.queue, expires=2)
    event = outcomes.wait(job["job_id"], timeout=30)
    assert event.data.error is not None and event.data.error.code == "expired"
    assert event.data.attempts == 1  # the try that met the 429
    assert len(sandbox_requests(sandbox, "telegram", chat_id=chat_id)) == 1  # the 429 only


def test_a_copy_of_a_job_another_worker_is_sending_is_dropped_not_requeued(
    core: Any, rclient: Any
) -> None:
    job = make_job([{"channel_id": "tg", "identifier": chat()}])
    rclient.set(f"herald:lease:{job['job_id']}", "another-worker", ex=30)
    try:
        step = core.context.pipeline.send(job, task_id=str(uuid.uuid4()))
        assert step.event is None  # acked: the record keeps the job, not a second message
    finally:
        rclient.delete(f"herald:lease:{job['job_id']}")
