"""Batches (docs/contract.md#batches): ``herald.send_batch`` and ``enqueue_many`` through a
real worker; each job of a batch ends exactly as if it had come alone."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from herald.contract.errors import InvalidJob
from herald.contract.names import BATCH_TASK, DEAD_STREAM
from herald.producer import Producer, enqueue
from herald.testing.sandbox import Sandbox
from tests.conftest import Outcomes, make_job, sandbox_requests

pytestmark = pytest.mark.usefixtures("worker")


def chat() -> str:
    return str(uuid.uuid4().int % 10**9)


def send_batch(app: Any, queue: str, jobs: Any) -> str:
    """Publish ``herald.send_batch`` by name, as any producer would; its task id."""
    task_id = str(uuid.uuid4())
    app.send_task(BATCH_TASK, kwargs={"jobs": jobs}, queue=queue, task_id=task_id)
    return task_id


def test_every_job_of_a_batch_is_sent_with_its_own_event(
    celery_app: Any, settings: Any, sandbox: Sandbox, outcomes: Outcomes
) -> None:
    # Given a batch on the bulk queue: ten jobs, one without a job_id, one invalid,
    chats = [chat() for _ in range(10)]
    jobs: list[Any] = [make_job([{"channel_id": "tg", "identifier": c}]) for c in chats]
    anonymous = jobs[3]
    del anonymous["job_id"]
    jobs[5]["message"] = {"type": "text", "text": ""}
    task_id = send_batch(celery_app, settings.bulk, jobs)

    # each job ends once, the anonymous one known by the task id and its index,
    events = {
        i: outcomes.wait(job.get("job_id") or f"{task_id}:{i}", timeout=30)
        for i, job in enumerate(jobs)
    }
    assert events[3].job_id == f"{task_id}:3"
    assert (events[5].event, events[5].data.error and events[5].data.error.code) == (
        "message.failed",
        "invalid_job",
    )
    assert {events[i].event for i in events if i != 5} == {"message.sent"}
    # and each sent job reached the provider once.
    for i, c in enumerate(chats):
        assert len(sandbox_requests(sandbox, "telegram", chat_id=c)) == (0 if i == 5 else 1)


def test_a_job_already_finished_is_not_sent_again_by_a_batch(
    celery_app: Any, settings: Any, sandbox: Sandbox, outcomes: Outcomes
) -> None:
    c = chat()
    job = make_job([{"channel_id": "tg", "identifier": c}])
    enqueue(celery_app, job)
    first = outcomes.wait(job["job_id"])
    other = make_job([{"channel_id": "tg", "identifier": chat()}])
    send_batch(celery_app, settings.bulk, [job, other])
    outcomes.wait(other["job_id"])
    assert outcomes.for_job(job["job_id"]) == [first]
    assert len(sandbox_requests(sandbox, "telegram", chat_id=c)) == 1


@pytest.mark.parametrize(
    ("jobs", "reason"),
    [
        ({"not": "an array"}, "jobs must be a JSON array"),
        ([], "jobs is empty"),
        ([{"job_id": "x"}] * 1001, "1001 jobs; the limit is 1000"),
    ],
)
def test_a_call_that_carries_no_batch_gets_one_failed_event_and_a_dead_letter(
    jobs: Any, reason: str, celery_app: Any, settings: Any, rclient: Any, outcomes: Outcomes
) -> None:
    from herald.contract.events import OutcomeEvent

    before = last_id(rclient, outcomes.stream)
    task_id = send_batch(celery_app, settings.bulk, jobs)
    # The call is known by its task id: its record ends failed,
    deadline = time.monotonic() + 20
    while rclient.hget(f"herald:job:{task_id}", "state") != "failed":
        assert time.monotonic() < deadline, "the batch call did not end"
        time.sleep(0.05)
    # with one event, whose entry job_id is "",
    [event] = [
        OutcomeEvent.from_fields(f)
        for _, f in rclient.xrange(outcomes.stream, min=f"({before}")
        if f["job_id"] == "" and reason in f["data"]
    ]
    assert (event.event, event.data.job_id) == ("message.failed", None)
    assert event.data.error is not None and event.data.error.code == "invalid_job"
    # and the call kept in the dead-letter stream.
    dead = [f for _, f in rclient.xrange(DEAD_STREAM) if reason in f["reason"]]
    assert dead and dead[-1]["task"] == BATCH_TASK


def last_id(client: Any, stream: str) -> str:
    newest = client.xrevrange(stream, count=1)
    return newest[0][0] if newest else "0-0"


def test_a_job_that_meets_a_transient_failure_is_retried_alone(
    celery_app: Any, settings: Any, sandbox: Sandbox, outcomes: Outcomes
) -> None:
    # Given a batch one of whose jobs the provider turns away once ("retry after 1 s"),
    flood = {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 1",
        "parameters": {"retry_after": 1},
    }
    sandbox.fail_next("telegram", 429, flood, times=1)
    jobs = [make_job([{"channel_id": "tg", "identifier": chat()}]) for _ in range(3)]
    send_batch(celery_app, settings.bulk, jobs)
    events = [outcomes.wait(j["job_id"], timeout=30) for j in jobs]
    # every job is sent in the end, that one on a second attempt.
    assert {e.event for e in events} == {"message.sent"}
    assert sorted(e.data.attempts for e in events) == [1, 1, 2]


def test_enqueue_many_validates_every_job_first_then_publishes_batches(
    celery_app: Any, settings: Any, rclient: Any, outcomes: Outcomes
) -> None:
    jobs = [make_job([{"channel_id": "tg", "identifier": chat()}]) for _ in range(25)]
    bad = [*jobs[:3], {"contact": {}}]
    with Producer(celery_app) as producer:
        with pytest.raises(InvalidJob, match=r"^job 3: "):
            producer.enqueue_many(bad, batch_size=10)
        assert all(not rclient.exists(f"herald:job:{j['job_id']}") for j in jobs[:3])
        del jobs[0]["job_id"]
        ids = producer.enqueue_many(jobs, batch_size=10)
    assert len(ids) == 25 and ids[1:] == [j["job_id"] for j in jobs[1:]]
    events = [outcomes.wait(i, timeout=30) for i in ids]
    assert {e.event for e in events} == {"message.sent"}
