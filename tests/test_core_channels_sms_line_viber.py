"""Twilio SMS, LINE and Viber jobs through the send core and the sandbox: menus, retry keys
(a send LINE already accepted counts as sent), refused recipients."""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs

import httpx
import pytest

from herald.adapters.line import retry_key
from herald.testing.sandbox import DEFAULT_SECRETS, Sandbox
from herald.testing.sandbox.server import Recorded
from tests.conftest import Core, make_job, sandbox_requests

MENU = [{"title": "Yes", "payload": "YES"}, {"title": "No"}]


def twilio_forms(sandbox: Sandbox, to: str) -> list[dict[str, list[str]]]:
    """Form bodies the sandbox's Twilio received for ``to``."""
    forms = [parse_qs(r.body.decode()) for r in sandbox.requests if r.provider == "twilio_sms"]
    return [f for f in forms if f.get("To") == [to]]


def line_requests(sandbox: Sandbox, to: str) -> list[Recorded]:
    return [r for r in sandbox.requests if r.provider == "line" and r.json().get("to") == to]


def phone() -> str:
    return f"+1555{uuid.uuid4().int % 10**7:07d}"


def test_sms_text_is_sent_with_a_numbered_menu(core: Core, sandbox: Sandbox) -> None:
    to = phone()
    job = make_job([{"channel_id": "sms", "identifier": to}])
    job["message"] = {
        "type": "text",
        "text": "Hi $contact.firstname 👋, confirm?",
        "quick_replies": MENU,
    }

    event = core.send(job)

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


def test_sms_to_an_unsubscribed_number_is_recipient_unavailable(core: Core) -> None:
    job = make_job([{"channel_id": "sms", "identifier": "+15005550004"}], failure_branch=True)
    event = core.send(job)
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


def test_line_text_is_pushed_with_quick_replies(core: Core, sandbox: Sandbox) -> None:
    user = f"U{uuid.uuid4().hex}"
    job = make_job([{"channel_id": "line", "identifier": user}])
    job["message"] = {"type": "text", "text": "Hi $contact.firstname", "quick_replies": MENU}

    event = core.send(job)

    assert (event.event, event.data.channel_type) == ("message.sent", "line")
    [seen] = line_requests(sandbox, user)
    assert seen.headers["x-line-retry-key"] == retry_key(job["job_id"], 0)
    [message] = seen.json()["messages"]
    assert message["text"] == "Hi Ana"
    assert [item["action"]["label"] for item in message["quickReply"]["items"]] == ["Yes", "No"]
    [message_id] = event.data.provider_message_ids
    assert message_id.isdigit()


def test_line_already_accepted_retry_key_counts_as_sent(core: Core, sandbox: Sandbox) -> None:
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

    event = core.send(job)

    # Then LINE answers 409 and the job is sent, once, with the accepted request id
    assert (event.event, event.data.error) == ("message.sent", None)
    assert event.data.provider_message_ids == [first.headers["x-line-request-id"]]
    assert [r.duplicate for r in line_requests(sandbox, user)] == [False, True]


def test_viber_text_is_sent(core: Core, sandbox: Sandbox) -> None:
    receiver = f"{uuid.uuid4().hex[:22]}=="
    job = make_job([{"channel_id": "viber", "identifier": receiver}])

    event = core.send(job)

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
    core: Core, failure_branch: bool, expected_next: str
) -> None:
    job = make_job(
        [{"channel_id": "viber", "identifier": "unsubscribed"}], failure_branch=failure_branch
    )
    event = core.send(job)
    assert event.event == "message.failed"
    assert event.data.error is not None
    assert event.data.error.code == "recipient_unavailable"
    assert (event.data.error.provider_code, event.data.error.retryable) == ("6", False)
    assert event.data.next == expected_next
