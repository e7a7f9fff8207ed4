"""The thin end-to-end layer: what only a real Celery worker can show. Jobs enqueued by task
name, task ids as job ids, call shapes, Celery's retry for a long wait, dead letters, the
interaction task, and an email through the worker. What the send core does with a job is
tested directly in tests/test_core_*.py."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from celery.signals import before_task_publish

from herald.contract.names import DEAD_STREAM, INTERACTION_TASK, SEND_TASK
from herald.producer import enqueue, record_interaction
from herald.store.keys import interactions_key
from herald.testing.sandbox import Sandbox
from tests.conftest import Outcomes, make_job, sandbox_requests
from tests.smtp_server import SmtpServer

pytestmark = pytest.mark.usefixtures("worker")


def send(app: Any, settings: Any, *args: Any, **kwargs: Any) -> str:
    """Enqueue ``herald.send_message`` by name, as any producer would; its Celery task id."""
    task_id = str(uuid.uuid4())
    app.send_task(SEND_TASK, args=args, kwargs=kwargs, queue=settings.queue, task_id=task_id)
    return task_id


def eventually(found: Callable[[], list[Any]], timeout: float = 20.0) -> list[Any]:
    """What ``found`` returns once it is not empty (it fails after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while not (result := found()):
        assert time.monotonic() < deadline, f"nothing found within {timeout}s"
        time.sleep(0.05)
    return result


def chat() -> str:
    return str(uuid.uuid4().int % 10**9)


@pytest.mark.parametrize("shape", ["kwargs", "args"])
def test_job_enqueued_by_name_is_sent_with_one_event(
    shape: str, celery_app: Any, settings: Any, sandbox: Sandbox, outcomes: Outcomes
) -> None:
    chat_id = chat()
    job = make_job([{"channel_id": "tg", "identifier": chat_id}])
    if shape == "kwargs":
        send(celery_app, settings, job=job)
    else:
        send(celery_app, settings, job)

    event = outcomes.wait(job["job_id"])

    assert (event.event, event.job_id, event.data.attempts) == ("message.sent", job["job_id"], 1)
    assert event.data.provider_message_ids == [f"{chat_id}:1"]
    [body] = sandbox_requests(sandbox, "telegram", chat_id=chat_id)
    assert body["text"] == "Hi Ana"


def test_job_without_job_id_is_known_by_its_task_id(
    celery_app: Any, settings: Any, outcomes: Outcomes
) -> None:
    job = make_job()
    del job["job_id"]
    task_id = send(celery_app, settings, job=job)
    event = outcomes.wait(task_id)
    assert event.event == "message.sent"
    assert event.data.job_id == task_id


def test_same_job_id_enqueued_twice_sends_once(
    celery_app: Any, settings: Any, sandbox: Sandbox, outcomes: Outcomes
) -> None:
    chat_id = chat()
    job = make_job([{"channel_id": "tg", "identifier": chat_id}])
    send(celery_app, settings, job=job)
    send(celery_app, settings, job=job)
    event = outcomes.wait(job["job_id"], settle=1.0)
    assert event.event == "message.sent"
    assert len(sandbox_requests(sandbox, "telegram", chat_id=chat_id)) == 1


def test_long_provider_hint_goes_back_to_the_queue_then_is_sent(
    celery_app: Any, settings: Any, sandbox: Sandbox, outcomes: Outcomes
) -> None:
    chat_id = chat()
    sandbox.fail_next(
        "telegram",
        429,
        {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 3",
            "parameters": {"retry_after": 3},
        },
    )
    job = make_job([{"channel_id": "tg", "identifier": chat_id}])
    started = time.monotonic()
    send(celery_app, settings, job=job)
    event = outcomes.wait(job["job_id"], timeout=30)
    assert (event.event, event.data.attempts) == ("message.sent", 2)
    # The hint (3 s) is above the in-call limit, so the job waited in the queue that long.
    assert time.monotonic() - started >= 3.0
    assert len(sandbox_requests(sandbox, "telegram", chat_id=chat_id)) == 2  # the 429, the send


def test_malformed_task_call_is_invalid_job_known_by_its_task_id(
    celery_app: Any, settings: Any, outcomes: Outcomes, sandbox: Sandbox
) -> None:
    chat_id = chat()
    job = make_job([{"channel_id": "tg", "identifier": chat_id}])
    task_id = send(celery_app, settings, job, priority="high")  # a job and a stray keyword
    event = outcomes.wait(task_id)
    assert (event.event, event.data.job_id, event.data.attempts) == ("message.failed", task_id, 0)
    assert event.data.error is not None and event.data.error.code == "invalid_job"
    assert event.data.error.message == (
        "herald.send_message takes one argument, job; it was called with 1 positional,"
        " keyword 'priority'"
    )
    assert sandbox_requests(sandbox, "telegram", chat_id=chat_id) == []


def test_job_that_is_not_an_object_gets_event_and_dead_letter(
    celery_app: Any, settings: Any, rclient: Any, outcomes: Outcomes
) -> None:
    marker = f"not-a-job-{uuid.uuid4().hex}"
    send(celery_app, settings, job=[marker])
    dead = eventually(lambda: [f for _, f in rclient.xrange(DEAD_STREAM) if marker in f["raw"]])
    assert dead == [
        {"task": SEND_TASK, "raw": f'["{marker}"]', "reason": "job must be a JSON object, not list"}
    ]
    # job_id is "" for a payload that is not an object; data.job_id is null.
    failed = [
        e for e in outcomes.for_job("") if e.data.error and "not list" in e.data.error.message
    ]
    assert failed, "a message.failed event with job_id '' was written"
    assert failed[-1].data.job_id is None
    assert failed[-1].data.error is not None and failed[-1].data.error.code == "invalid_job"


def test_interaction_recorded_through_the_task_drives_last_interacted(
    celery_app: Any, settings: Any, sandbox: Sandbox, outcomes: Outcomes, rclient: Any
) -> None:
    # Given the snapshot says the contact last wrote on Telegram on 20 November
    recipient = f"crm-{uuid.uuid4().hex[:6]}"
    job = make_job(
        [
            {"channel_id": "tg", "identifier": "77", "last_interaction_at": "2026-11-20T09:00:00Z"},
            {"channel_id": "hook", "identifier": recipient},
        ]
    )
    contact_id = job["contact"]["id"]
    # and herald.record_interaction has recorded a newer message on the webhook channel
    record_interaction(
        celery_app,
        {
            "contact_id": contact_id,
            "channel_id": "hook",
            "identifier": recipient,
            "at": "2026-11-24T09:00:00Z",
        },
        queue=settings.queue,
    )
    eventually(lambda: rclient.hkeys(interactions_key(contact_id)))

    # When the job is enqueued, then it goes out on the webhook
    enqueue(celery_app, job, queue=settings.queue)
    event = outcomes.wait(job["job_id"])
    assert event.data.channel_id == "hook"
    assert sandbox_requests(sandbox, "custom", data__recipient=recipient)


def test_invalid_interaction_goes_to_dead_letters(
    celery_app: Any, settings: Any, rclient: Any
) -> None:
    marker = f"c-{uuid.uuid4().hex}"
    celery_app.send_task(
        INTERACTION_TASK,
        kwargs={"interaction": {"contact_id": marker, "channel_id": "tg"}},
        queue=settings.queue,
    )
    dead = eventually(lambda: [f for _, f in rclient.xrange(DEAD_STREAM) if marker in f["raw"]])
    assert dead[0]["task"] == INTERACTION_TASK
    assert "identifier" in dead[0]["reason"]


def test_email_job_through_the_worker_reaches_the_smtp_server(
    celery_app: Any, settings: Any, outcomes: Outcomes, smtp_server: SmtpServer
) -> None:
    recipient = f"ana-{uuid.uuid4().hex[:8]}@example.com"
    job = make_job(
        [{"channel_id": "mail", "identifier": recipient}],
        channel_responses={
            "mail": {
                "type": "email",
                "subject": "Order for $contact.firstname",
                "html": "<p>Hi</p>",
            }
        },
    )
    send(celery_app, settings, job=job)
    event = outcomes.wait(job["job_id"])
    assert (event.event, event.data.channel_type) == ("message.sent", "email_smtp")
    [mail] = [m for m in smtp_server.messages if m.rcpt_tos == [recipient]]
    assert mail.message["Subject"] == "Order for Ana"
    assert event.data.provider_message_ids == [mail.message["Message-ID"]]


def test_a_job_put_back_on_the_queue_shows_only_its_id(
    celery_app: Any, settings: Any, sandbox: Sandbox, outcomes: Outcomes
) -> None:
    # Given a job whose provider asks for a wait longer than the in-call limit,
    chat_id = chat()
    sandbox.fail_next(
        "telegram",
        429,
        {"ok": False, "error_code": 429, "description": "slow", "parameters": {"retry_after": 3}},
    )
    job = make_job([{"channel_id": "tg", "identifier": chat_id}])
    job["message"]["text"] = "secret plans for $contact.firstname"
    published: list[dict[str, Any]] = []

    def seen(headers: dict[str, Any] | None = None, **_: Any) -> None:
        if headers and headers.get("id") == job["job_id"]:
            published.append(headers)

    before_task_publish.connect(seen, weak=False)
    try:
        celery_app.send_task(
            SEND_TASK,
            kwargs={"job": job},
            queue=settings.queue,
            task_id=job["job_id"],
            kwargsrepr=f"{{'job': <job {job['job_id']}>}}",
        )
        assert outcomes.wait(job["job_id"], timeout=30).event == "message.sent"
    finally:
        before_task_publish.disconnect(seen)
    # then the message that put it back on the queue shows the job by its id, as the
    # producer's did, never its content (Flower and task events show these fields).
    retried = published[1:]  # the first is the producer's
    assert retried, published
    for headers in retried:
        assert headers["kwargsrepr"] == f"{{'job': <job {job['job_id']}>}}"
        assert headers["argsrepr"] == "()"
        assert "secret" not in str(headers)
