"""A send job from enqueue to outcome event, through a real worker, Redis and provider server."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from herald.contract.names import DEAD_STREAM, SEND_TASK
from herald.producer import enqueue, record_interaction
from herald.testing.sandbox import Sandbox
from tests.conftest import Outcomes, make_job, sandbox_requests

pytestmark = pytest.mark.usefixtures("worker")


def send(app: Any, settings: Any, job: Any, **options: Any) -> str:
    """Enqueue by task name, as any producer would; return the Celery task id."""
    task_id = str(uuid.uuid4())
    app.send_task(SEND_TASK, kwargs={"job": job}, queue=settings.queue, task_id=task_id, **options)
    return task_id


def test_text_is_sent_with_variables_and_one_event(
    celery_app: Any, settings: Any, sandbox: Sandbox, outcomes: Outcomes
) -> None:
    chat = str(uuid.uuid4().int % 10**9)
    job = make_job([{"channel_id": "tg", "identifier": chat}], failure_branch=True)
    job["message"]["text"] = (
        "🧑🏽‍🚀 Hi $contact.firstname, order $trigger.id is ${http.status|on its way}."
    )
    job["variables"] = {"trigger": {"id": "A-17"}}
    job["enqueued_at"] = "2026-11-24T11:00:00+01:00"

    send(celery_app, settings, job)
    event = outcomes.wait(job["job_id"])

    assert event.event == "message.sent"
    assert event.job_id == job["job_id"]
    data = event.data
    assert (data.outcome, data.next, data.error) == ("sent", "success", None)
    assert (data.channel_id, data.channel_type, data.contact_id) == (
        "tg",
        "telegram",
        job["contact"]["id"],
    )
    assert data.provider_message_ids == [f"{chat}:1"]
    assert data.attempts == 1
    assert data.enqueued_at == "2026-11-24T10:00:00.000Z"
    assert data.finished_at.endswith("Z") and len(data.finished_at) == 24
    assert data.workflow is not None and data.workflow.step_id == "step-1"
    [body] = sandbox_requests(sandbox, "telegram", chat_id=chat)
    assert body["text"] == "🧑🏽‍🚀 Hi Ana, order A-17 is on its way."


def test_webhook_channel_named_by_the_job(
    celery_app: Any, settings: Any, sandbox: Sandbox, outcomes: Outcomes
) -> None:
    recipient = f"crm-{uuid.uuid4().hex[:6]}"
    job = make_job(
        [{"channel_id": "tg", "identifier": "1"}, {"channel_id": "hook", "identifier": recipient}],
        channel="hook",
    )
    send(celery_app, settings, job)
    event = outcomes.wait(job["job_id"])
    assert (event.event, event.data.channel_id, event.data.channel_type) == (
        "message.sent",
        "hook",
        "custom",
    )
    [body] = sandbox_requests(sandbox, "custom", data__recipient=recipient)
    assert body["data"]["message"] == {"type": "text", "text": "Hi Ana"}
    assert body["data"]["job_id"] == job["job_id"]


def test_no_usable_channel_fails_without_calling_a_provider(
    celery_app: Any, settings: Any, sandbox: Sandbox, outcomes: Outcomes
) -> None:
    job = make_job([{"channel_id": "not-connected", "identifier": "x"}])
    before = len(sandbox.requests)
    send(celery_app, settings, job)
    event = outcomes.wait(job["job_id"])
    assert event.event == "message.failed"
    assert event.data.error is not None
    assert (event.data.error.code, event.data.error.retryable) == ("no_channel", False)
    assert (event.data.next, event.data.attempts, event.data.channel_id) == ("end", 0, None)
    assert len(sandbox.requests) == before


def test_named_channel_missing_from_channels_file_is_unknown_channel(
    celery_app: Any, settings: Any, outcomes: Outcomes
) -> None:
    job = make_job(channel="wa_nowhere", failure_branch=True)
    send(celery_app, settings, job)
    event = outcomes.wait(job["job_id"])
    assert event.data.error is not None and event.data.error.code == "unknown_channel"
    assert event.data.next == "failure"


def test_connected_channel_without_identifier_is_no_channel(
    celery_app: Any, settings: Any, outcomes: Outcomes
) -> None:
    job = make_job(channel="hook")  # the contact has only a Telegram identifier
    send(celery_app, settings, job)
    event = outcomes.wait(job["job_id"])
    assert event.data.error is not None and event.data.error.code == "no_channel"


@pytest.mark.parametrize(("failure_branch", "expected_next"), [(True, "failure"), (False, "end")])
def test_failure_branch_decides_next(
    celery_app: Any, settings: Any, outcomes: Outcomes, failure_branch: bool, expected_next: str
) -> None:
    job = make_job([{"channel_id": "tg", "identifier": "blocked"}], failure_branch=failure_branch)
    send(celery_app, settings, job)
    event = outcomes.wait(job["job_id"])
    assert event.event == "message.failed"
    assert event.data.next == expected_next
    assert event.data.error is not None
    assert event.data.error.model_dump() == {
        "code": "recipient_unavailable",
        "retryable": False,
        "message": "telegram sendMessage: Forbidden: bot was blocked by the user",
        "provider_code": "403",
    }
    assert event.data.attempts == 1


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"colour": "blue"}, "colour"),
        ({"message": {"type": "text", "text": "x" * 2001}}, "2001 characters"),
        ({"enqueued_at": "2026-11-24T10:00:00"}, "enqueued_at"),
        ({"variables": {"contact": {"x": 1}}}, "reserved"),
        ({"message": {"type": "fax", "text": "hi"}}, "message"),
    ],
)
def test_invalid_job_is_refused_with_invalid_job(
    celery_app: Any, settings: Any, outcomes: Outcomes, change: dict[str, Any], fragment: str
) -> None:
    job = make_job(**change)
    send(celery_app, settings, job)
    event = outcomes.wait(job["job_id"])
    assert event.event == "message.failed"
    assert event.job_id == event.data.job_id == job["job_id"]
    assert event.data.error is not None
    assert event.data.error.code == "invalid_job"
    assert fragment in event.data.error.message
    assert event.data.attempts == 0


def test_text_of_exactly_2000_characters_is_accepted(
    celery_app: Any, settings: Any, outcomes: Outcomes
) -> None:
    job = make_job(message={"type": "text", "text": "é" * 2000})
    send(celery_app, settings, job)
    assert outcomes.wait(job["job_id"]).event == "message.sent"


def test_job_that_is_not_an_object_gets_event_and_dead_letter(
    celery_app: Any, settings: Any, rclient: Any
) -> None:
    marker = f"not-a-job-{uuid.uuid4().hex}"
    send(celery_app, settings, [marker])
    outcomes = Outcomes(rclient, settings.events_stream)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        dead = [f for _, f in rclient.xrange(DEAD_STREAM) if marker in f["raw"]]
        if dead:
            break
        time.sleep(0.05)
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


def test_job_without_job_id_is_known_by_task_id(
    celery_app: Any, settings: Any, outcomes: Outcomes
) -> None:
    job = make_job()
    del job["job_id"]
    task_id = send(celery_app, settings, job)
    event = outcomes.wait(task_id)
    assert event.event == "message.sent"
    assert event.data.job_id == task_id


def test_same_job_id_enqueued_twice_sends_once(
    celery_app: Any, settings: Any, sandbox: Sandbox, outcomes: Outcomes
) -> None:
    chat = str(uuid.uuid4().int % 10**9)
    job = make_job([{"channel_id": "tg", "identifier": chat}])
    send(celery_app, settings, job)
    send(celery_app, settings, job)
    event = outcomes.wait(job["job_id"], settle=1.0)
    assert event.event == "message.sent"
    assert len(sandbox_requests(sandbox, "telegram", chat_id=chat)) == 1


def test_transient_failure_is_retried_then_sent(
    celery_app: Any, settings: Any, sandbox: Sandbox, outcomes: Outcomes
) -> None:
    chat = str(uuid.uuid4().int % 10**9)
    sandbox.fail_next(
        "telegram", 502, {"ok": False, "error_code": 502, "description": "Bad Gateway"}, times=2
    )
    job = make_job([{"channel_id": "tg", "identifier": chat}])
    send(celery_app, settings, job)
    event = outcomes.wait(job["job_id"])
    assert (event.event, event.data.attempts) == ("message.sent", 3)


def test_rate_limit_with_long_hint_goes_back_to_the_queue(
    celery_app: Any, settings: Any, sandbox: Sandbox, outcomes: Outcomes
) -> None:
    chat = str(uuid.uuid4().int % 10**9)
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
    job = make_job([{"channel_id": "tg", "identifier": chat}])
    started = time.monotonic()
    send(celery_app, settings, job)
    event = outcomes.wait(job["job_id"], timeout=30)
    assert (event.event, event.data.attempts) == ("message.sent", 2)
    # The hint (3 s) is above the in-call limit, so the job waited in the queue that long.
    assert time.monotonic() - started >= 3.0
    assert len(sandbox_requests(sandbox, "telegram", chat_id=chat)) == 2  # the 429, then the send


def test_recorded_interaction_drives_last_interacted(
    celery_app: Any, settings: Any, sandbox: Sandbox, outcomes: Outcomes
) -> None:
    recipient = f"crm-{uuid.uuid4().hex[:6]}"
    job = make_job(
        [
            {"channel_id": "tg", "identifier": "77", "last_interaction_at": "2026-11-20T09:00:00Z"},
            {"channel_id": "hook", "identifier": recipient},
        ]
    )
    record_interaction(
        celery_app,
        {
            "contact_id": job["contact"]["id"],
            "channel_id": "hook",
            "identifier": recipient,
            "at": "2026-11-24T09:00:00Z",
        },
        queue=settings.queue,
    )
    # An older interaction recorded later must not win over the newer one.
    record_interaction(
        celery_app,
        {
            "contact_id": job["contact"]["id"],
            "channel_id": "hook",
            "identifier": "old",
            "at": "2026-11-01T09:00:00Z",
        },
        queue=settings.queue,
    )
    time.sleep(1.0)
    enqueue(celery_app, job, queue=settings.queue)
    event = outcomes.wait(job["job_id"])
    assert event.data.channel_id == "hook"
    assert sandbox_requests(sandbox, "custom", data__recipient=recipient)


def test_invalid_interaction_goes_to_dead_letters(
    celery_app: Any, settings: Any, rclient: Any
) -> None:
    marker = f"c-{uuid.uuid4().hex}"
    celery_app.send_task(
        "herald.record_interaction",
        kwargs={"interaction": {"contact_id": marker, "channel_id": "tg"}},
        queue=settings.queue,
    )
    deadline = time.monotonic() + 20
    dead: list[Any] = []
    while not dead and time.monotonic() < deadline:
        dead = [f for _, f in rclient.xrange(DEAD_STREAM) if marker in f["raw"]]
        time.sleep(0.05)
    assert dead and dead[0]["task"] == "herald.record_interaction"
    assert "identifier" in dead[0]["reason"]
