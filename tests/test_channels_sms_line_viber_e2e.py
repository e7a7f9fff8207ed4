"""Twilio SMS, LINE and Viber sends through a real worker, Redis and the provider sandbox."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from herald.adapters.line import retry_key
from herald.contract.names import SEND_TASK
from herald.testing.sandbox import DEFAULT_SECRETS, Sandbox
from herald.testing.sandbox.server import Recorded
from tests.conftest import Outcomes, make_job, sandbox_requests

pytestmark = pytest.mark.usefixtures("worker")

MENU = [{"title": "Yes", "payload": "YES"}, {"title": "No"}]


def send(app: Any, settings: Any, job: dict[str, Any]) -> None:
    app.send_task(SEND_TASK, kwargs={"job": job}, queue=settings.queue)


def twilio_forms(sandbox: Sandbox, to: str) -> list[dict[str, list[str]]]:
    """Form bodies the sandbox's Twilio received for ``to``."""
    forms = [parse_qs(r.body.decode()) for r in sandbox.requests if r.provider == "twilio_sms"]
    return [f for f in forms if f.get("To") == [to]]


def line_requests(sandbox: Sandbox, to: str) -> list[Recorded]:
    return [r for r in sandbox.requests if r.provider == "line" and r.json().get("to") == to]


def phone() -> str:
    return f"+1555{uuid.uuid4().int % 10**7:07d}"


def test_sms_text_is_sent_with_a_numbered_menu(
    celery_app: Any, settings: Any, sandbox: Sandbox, outcomes: Outcomes
) -> None:
    to = phone()
    job = make_job([{"channel_id": "sms", "identifier": to}])
    job["message"] = {
        "type": "text",
        "text": "Hi $contact.firstname 👋, confirm?",
        "quick_replies": MENU,
    }

    send(celery_app, settings, job)
    event = outcomes.wait(job["job_id"])

    assert (event.event, event.data.next, event.data.error) == ("message.sent", "success", None)
    assert (event.data.channel_id, event.data.channel_type) == ("sms", "twilio_sms")
    [form] = twilio_forms(sandbox, to)
    assert form == {
        "To": [to],
        "From": ["+15005550006"],
        "Body": ["Hi Ana 👋, confirm?\n\n1. Yes\n2. No"],
    }
    [sid] = event.data.provider_message_ids
    assert sid.startswith("SM") and len(sid) == 34


def test_sms_to_an_unsubscribed_number_is_recipient_unavailable(
    celery_app: Any, settings: Any, outcomes: Outcomes
) -> None:
    job = make_job([{"channel_id": "sms", "identifier": "+15005550004"}], failure_branch=True)
    send(celery_app, settings, job)
    event = outcomes.wait(job["job_id"])
    assert event.event == "message.failed"
    assert event.data.error is not None
    assert (event.data.error.code, event.data.error.provider_code) == (
        "recipient_unavailable",
        "21610",
    )
    assert (event.data.error.retryable, event.data.next, event.data.attempts) == (
        False,
        "failure",
        1,
    )


def test_line_text_is_pushed_with_quick_replies(
    celery_app: Any, settings: Any, sandbox: Sandbox, outcomes: Outcomes
) -> None:
    user = f"U{uuid.uuid4().hex}"
    job = make_job([{"channel_id": "line", "identifier": user}])
    job["message"] = {"type": "text", "text": "Hi $contact.firstname", "quick_replies": MENU}

    send(celery_app, settings, job)
    event = outcomes.wait(job["job_id"])

    assert (event.event, event.data.channel_type) == ("message.sent", "line")
    [seen] = line_requests(sandbox, user)
    assert seen.headers["x-line-retry-key"] == retry_key(job["job_id"], 0)
    [message] = seen.json()["messages"]
    assert message["text"] == "Hi Ana"
    assert [item["action"]["label"] for item in message["quickReply"]["items"]] == ["Yes", "No"]
    [message_id] = event.data.provider_message_ids
    assert message_id.isdigit()


def test_line_already_accepted_retry_key_counts_as_sent(
    celery_app: Any, settings: Any, sandbox: Sandbox, outcomes: Outcomes
) -> None:
    user = f"U{uuid.uuid4().hex}"
    job = make_job([{"channel_id": "line", "identifier": user}])
    # Given LINE already accepted this job's first part (an earlier try whose answer was lost)
    first = httpx.post(
        f"{sandbox.url}/v2/bot/message/push",
        json={"to": user, "messages": [{"type": "text", "text": "Hi Ana"}]},
        headers={
            "authorization": f"Bearer {DEFAULT_SECRETS['line']}",
            "x-line-retry-key": retry_key(job["job_id"], 0),
        },
    )
    assert first.status_code == 200

    send(celery_app, settings, job)
    event = outcomes.wait(job["job_id"])

    # Then LINE answers 409 and the job is sent, once, with the accepted request id
    assert (event.event, event.data.error) == ("message.sent", None)
    assert event.data.provider_message_ids == [first.headers["x-line-request-id"]]
    assert [r.duplicate for r in line_requests(sandbox, user)] == [False, True]


def test_viber_text_is_sent(
    celery_app: Any, settings: Any, sandbox: Sandbox, outcomes: Outcomes
) -> None:
    receiver = f"{uuid.uuid4().hex[:22]}=="
    job = make_job([{"channel_id": "viber", "identifier": receiver}])

    send(celery_app, settings, job)
    event = outcomes.wait(job["job_id"])

    assert (event.event, event.data.channel_type) == ("message.sent", "viber")
    [body] = sandbox_requests(sandbox, "viber", receiver=receiver)
    assert body == {
        "receiver": receiver,
        "min_api_version": 1,
        "sender": {"name": "Herald Shop"},
        "type": "text",
        "text": "Hi Ana",
    }
    [message_token] = event.data.provider_message_ids
    assert message_token.isdigit()


@pytest.mark.parametrize(("failure_branch", "expected_next"), [(True, "failure"), (False, "end")])
def test_viber_unsubscribed_receiver_is_recipient_unavailable(
    celery_app: Any, settings: Any, outcomes: Outcomes, failure_branch: bool, expected_next: str
) -> None:
    job = make_job(
        [{"channel_id": "viber", "identifier": "unsubscribed"}], failure_branch=failure_branch
    )
    send(celery_app, settings, job)
    event = outcomes.wait(job["job_id"])
    assert event.event == "message.failed"
    assert event.data.error is not None
    assert event.data.error.code == "recipient_unavailable"
    assert (event.data.error.provider_code, event.data.error.retryable) == ("6", False)
    assert event.data.next == expected_next
