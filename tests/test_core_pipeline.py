"""The send core, driven directly: routing, validation, failure branch, idempotency, retries
(inside the call and via re-queue), in-doubt claims and recorded interactions."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from herald.config import InDoubtPolicy, Settings
from herald.contract.events import utc_stamp
from herald.contract.names import DEAD_STREAM, SEND_TASK
from herald.core.pipeline import Finished
from herald.core.retry import NOT_RESENT, Requeue
from herald.store.keys import job_key, lease_key
from herald.tasks.context import WorkerContext
from herald.testing.sandbox import Sandbox
from tests.conftest import Core, Outcomes, make_job, sandbox_requests


def chat() -> str:
    """A fresh Telegram chat id."""
    return str(uuid.uuid4().int % 10**9)


def telegram_job(chat_id: str, **extra: Any) -> dict[str, Any]:
    return make_job([{"channel_id": "tg", "identifier": chat_id}], **extra)


BAD_GATEWAY = {"ok": False, "error_code": 502, "description": "Bad Gateway"}


# -- a send and its event ----------------------------------------------------------


def test_text_is_sent_with_variables_and_one_event(core: Core, sandbox: Sandbox) -> None:
    chat_id = chat()
    job = telegram_job(chat_id, failure_branch=True)
    job["message"]["text"] = (
        "🧑🏽‍🚀 Hi $contact.firstname, order $trigger.id is ${http.status|on its way}."
    )
    job["variables"] = {"trigger": {"id": "A-17"}}
    job["enqueued_at"] = "2026-11-24T11:00:00+01:00"

    event = core.send(job)

    assert event.event == "message.sent"
    assert event.job_id == job["job_id"]
    data = event.data
    assert (data.outcome, data.next, data.error) == ("sent", "success", None)
    assert (data.channel_id, data.channel_type, data.contact_id) == (
        "tg",
        "telegram",
        job["contact"]["id"],
    )
    assert data.provider_message_ids == [f"{chat_id}:1"]
    assert data.attempts == 1
    assert data.enqueued_at == "2026-11-24T10:00:00.000Z"
    assert data.finished_at.endswith("Z") and len(data.finished_at) == 24
    assert data.workflow is not None and data.workflow.step_id == "step-1"
    [body] = sandbox_requests(sandbox, "telegram", chat_id=chat_id)
    assert body["text"] == "🧑🏽‍🚀 Hi Ana, order A-17 is on its way."


def test_delivery_record_is_kept_for_the_retention(
    core: Core, settings: Settings, rclient: Any
) -> None:
    job = make_job()
    core.send(job)
    record = rclient.hgetall(job_key(job["job_id"]))
    assert record["state"] == "sent" and record["attempts"] == "1"
    ttl = rclient.ttl(job_key(job["job_id"]))
    assert settings.state_retention_s - 60 < ttl <= settings.state_retention_s


# -- routing -------------------------------------------------------------------------


def test_webhook_channel_named_by_the_job(core: Core, sandbox: Sandbox) -> None:
    recipient = f"crm-{uuid.uuid4().hex[:6]}"
    job = make_job(
        [{"channel_id": "tg", "identifier": "1"}, {"channel_id": "hook", "identifier": recipient}],
        channel="hook",
    )
    event = core.send(job)
    assert (event.event, event.data.channel_id, event.data.channel_type) == (
        "message.sent",
        "hook",
        "custom",
    )
    [body] = sandbox_requests(sandbox, "custom", data__recipient=recipient)
    assert body["data"]["message"] == {"type": "text", "text": "Hi Ana"}
    assert body["data"]["job_id"] == job["job_id"]


def test_no_usable_channel_fails_without_calling_a_provider(core: Core, sandbox: Sandbox) -> None:
    job = make_job([{"channel_id": "not-connected", "identifier": "x"}])
    before = len(sandbox.requests)
    event = core.send(job)
    assert event.event == "message.failed"
    assert event.data.error is not None
    assert (event.data.error.code, event.data.error.retryable) == ("no_channel", False)
    assert (event.data.next, event.data.attempts, event.data.channel_id) == ("end", 0, None)
    assert len(sandbox.requests) == before


def test_named_channel_missing_from_channels_file_is_unknown_channel(core: Core) -> None:
    event = core.send(make_job(channel="wa_nowhere", failure_branch=True))
    assert event.data.error is not None and event.data.error.code == "unknown_channel"
    assert event.data.next == "failure"


def test_connected_channel_without_identifier_is_no_channel(core: Core) -> None:
    event = core.send(make_job(channel="hook"))  # the contact has only a Telegram identifier
    assert event.data.error is not None and event.data.error.code == "no_channel"


def test_recorded_interaction_drives_last_interacted(core: Core, sandbox: Sandbox) -> None:
    # Given a contact whose snapshot says Telegram was last used on 20 November
    recipient = f"crm-{uuid.uuid4().hex[:6]}"
    job = make_job(
        [
            {"channel_id": "tg", "identifier": "77", "last_interaction_at": "2026-11-20T09:00:00Z"},
            {"channel_id": "hook", "identifier": recipient},
        ]
    )
    # and a newer inbound message recorded on the webhook channel, then an older one
    # recorded later, which must not win over the newer
    record = core.context.store.record_interaction
    contact_id = job["contact"]["id"]
    newer = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    older = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    record(contact_id, "hook", recipient, int(newer.timestamp() * 1000), utc_stamp(newer))
    record(contact_id, "hook", "old", int(older.timestamp() * 1000), utc_stamp(older))

    # When the job is sent on the last interacted channel
    event = core.send(job)

    # Then it goes to the webhook, to the newer interaction's identifier
    assert event.data.channel_id == "hook"
    assert len(sandbox_requests(sandbox, "custom", data__recipient=recipient)) == 1
    assert sandbox_requests(sandbox, "custom", data__recipient="old") == []


# -- the failure branch and invalid jobs -------------------------------------------


@pytest.mark.parametrize(("failure_branch", "expected_next"), [(True, "failure"), (False, "end")])
def test_failure_branch_decides_next(core: Core, failure_branch: bool, expected_next: str) -> None:
    job = telegram_job("blocked", failure_branch=failure_branch)
    event = core.send(job)
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
    core: Core, change: dict[str, Any], fragment: str
) -> None:
    job = make_job(**change)
    event = core.send(job)
    assert event.event == "message.failed"
    assert event.job_id == event.data.job_id == job["job_id"]
    assert event.data.error is not None
    assert event.data.error.code == "invalid_job"
    assert fragment in event.data.error.message
    assert event.data.attempts == 0


def test_text_of_exactly_2000_characters_is_accepted(core: Core) -> None:
    assert core.send(make_job(message={"type": "text", "text": "é" * 2000})).event == "message.sent"


def test_job_that_is_not_an_object_gets_event_and_dead_letter(
    core: Core, outcomes: Outcomes, rclient: Any
) -> None:
    marker = f"not-a-job-{uuid.uuid4().hex}"
    event = core.send([marker])
    dead = [f for _, f in rclient.xrange(DEAD_STREAM) if marker in f["raw"]]
    assert dead == [
        {"task": SEND_TASK, "raw": f'["{marker}"]', "reason": "job must be a JSON object, not list"}
    ]
    # job_id is "" for a payload that is not an object; data.job_id is null.
    assert (event.event, event.job_id, event.data.job_id) == ("message.failed", "", None)
    assert event.data.error is not None and event.data.error.code == "invalid_job"
    assert "not list" in event.data.error.message
    assert event in outcomes.for_job("")


def test_job_without_job_id_is_known_by_task_id(core: Core) -> None:
    job = make_job()
    del job["job_id"]
    task_id = str(uuid.uuid4())
    event = core.send(job, task_id=task_id)
    assert event.event == "message.sent"
    assert event.job_id == event.data.job_id == task_id


# -- idempotency by job_id ---------------------------------------------------------


def test_same_job_id_sent_twice_sends_once(
    core: Core, sandbox: Sandbox, outcomes: Outcomes
) -> None:
    chat_id = chat()
    job = telegram_job(chat_id)
    assert core.send(job).event == "message.sent"

    # A second copy (another task id, the same job_id) ends with no send and no event.
    assert core.context.pipeline.send(job, task_id=str(uuid.uuid4())) == Finished(None)

    assert len(sandbox_requests(sandbox, "telegram", chat_id=chat_id)) == 1
    assert len(outcomes.for_job(job["job_id"])) == 1


# -- retries -------------------------------------------------------------------------


def test_transient_failure_is_retried_in_the_call_then_sent(core: Core, sandbox: Sandbox) -> None:
    chat_id = chat()
    sandbox.fail_next("telegram", 502, BAD_GATEWAY, times=2)
    job = telegram_job(chat_id)

    step = core.context.pipeline.send(job, task_id=str(uuid.uuid4()))

    # One call: the short backoffs are waited inside it, not on the queue.
    assert isinstance(step, Finished) and step.event is not None
    assert (step.event.event, step.event.data.attempts) == ("message.sent", 3)
    assert len(sandbox_requests(sandbox, "telegram", chat_id=chat_id)) == 3


def test_transient_failures_that_never_end_exhaust_to_a_retryable_failure(
    core: Core, settings: Settings, sandbox: Sandbox
) -> None:
    body = {"ok": False, "error_code": 500, "description": "Internal Server Error"}
    job = telegram_job(chat(), failure_branch=True)
    sandbox.fail_next("telegram", 500, body, times=settings.retry_max_attempts)
    event = core.send(job)
    assert event.event == "message.failed"
    assert event.data.attempts == settings.retry_max_attempts
    assert event.data.error is not None
    assert event.data.error.model_dump() == {
        "code": "provider_unavailable",
        "retryable": True,
        "message": "telegram sendMessage: Internal Server Error",
        "provider_code": "500",
    }
    assert event.data.next == "failure"


def test_rate_limit_with_long_hint_goes_back_to_the_queue(
    core: Core, settings: Settings, sandbox: Sandbox, outcomes: Outcomes
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
    job = telegram_job(chat_id)
    task_id = str(uuid.uuid4())

    # The hint (3 s) is above the in-call limit: the job goes back to the queue that long.
    first = core.context.pipeline.send(job, task_id=task_id)
    assert isinstance(first, Requeue)
    assert settings.retry_inline_max_s < 3.0 <= first.after
    assert outcomes.for_job(job["job_id"]) == []

    # Run again (the queue's countdown is not what is tested here), it is sent.
    second = core.context.pipeline.send(job, task_id=task_id)
    assert isinstance(second, Finished) and second.event is not None
    assert (second.event.event, second.event.data.attempts) == ("message.sent", 2)
    assert len(sandbox_requests(sandbox, "telegram", chat_id=chat_id)) == 2  # the 429, the send
    assert len(outcomes.for_job(job["job_id"])) == 1


# -- in doubt: an earlier attempt was cut off after it claimed the job --------------


@pytest.fixture(scope="module")
def at_most_once(settings: Settings, celery_app: Any, outcomes: Outcomes) -> Iterator[Core]:
    """The send core with ``HERALD_IN_DOUBT=at_most_once``."""
    changed = settings.model_copy(update={"in_doubt": InDoubtPolicy.AT_MOST_ONCE})
    context = WorkerContext.build(changed, celery_app)
    yield Core(context, outcomes)
    context.close()


def cut_off(core: Core, job: dict[str, Any], rclient: Any) -> None:
    """Leave ``job`` as a worker that died mid-send does: claimed, its lease run out."""
    core.context.store.claim(
        job["job_id"],
        "dead-worker",
        now=utc_stamp(),
        contact_id=job["contact"]["id"],
        payload=json.dumps(job),
        queue=core.context.settings.queue,
    )
    rclient.delete(lease_key(job["job_id"]))


def test_in_doubt_job_is_resent_at_least_once(core: Core, sandbox: Sandbox, rclient: Any) -> None:
    chat_id = chat()
    job = telegram_job(chat_id)
    cut_off(core, job, rclient)

    event = core.send(job)

    assert event.event == "message.sent"
    assert len(sandbox_requests(sandbox, "telegram", chat_id=chat_id)) == 1
    assert rclient.hget(job_key(job["job_id"]), "in_doubt") == "1"


def test_in_doubt_job_is_not_resent_at_most_once(
    at_most_once: Core, sandbox: Sandbox, rclient: Any
) -> None:
    chat_id = chat()
    job = telegram_job(chat_id, failure_branch=True)
    cut_off(at_most_once, job, rclient)

    event = at_most_once.send(job)

    assert (event.event, event.data.next) == ("message.failed", "failure")
    assert event.data.error is not None
    assert (event.data.error.code, event.data.error.retryable) == ("provider_unavailable", True)
    assert "in doubt" in event.data.error.message and NOT_RESENT in event.data.error.message
    assert sandbox_requests(sandbox, "telegram", chat_id=chat_id) == []
    assert rclient.hget(job_key(job["job_id"]), "in_doubt") == "1"


def test_in_doubt_job_on_a_deduping_provider_is_resent_at_most_once(
    at_most_once: Core, sandbox: Sandbox, rclient: Any
) -> None:
    recipient = f"crm-{uuid.uuid4().hex[:6]}"
    job = make_job([{"channel_id": "hook", "identifier": recipient}])
    cut_off(at_most_once, job, rclient)

    event = at_most_once.send(job)

    assert event.event == "message.sent"  # the webhook dedupes by job_id: safe to resend
    assert len(sandbox_requests(sandbox, "custom", data__recipient=recipient)) == 1


def test_in_doubt_answer_is_not_retried_at_most_once(at_most_once: Core, sandbox: Sandbox) -> None:
    # A 502 may come after Telegram took the message: at most once, it is not resent.
    chat_id = chat()
    sandbox.fail_next("telegram", 502, BAD_GATEWAY)
    event = at_most_once.send(telegram_job(chat_id))
    assert (event.event, event.data.attempts) == ("message.failed", 1)
    assert event.data.error is not None
    assert event.data.error.code == "provider_unavailable"
    assert event.data.error.message == (
        f"in doubt, not resent ({NOT_RESENT}): telegram sendMessage: Bad Gateway"
    )
    assert len(sandbox_requests(sandbox, "telegram", chat_id=chat_id)) == 1
