"""Messaging windows: the rules as data, and the send core refusing a send whose window is
closed before the provider is called."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from herald.config import ChannelType
from herald.contract.errors import WindowClosed
from herald.contract.events import utc_stamp
from herald.contract.job import MediaMessage, TextMessage, WhatsAppTemplate
from herald.core.windows import check_window
from herald.testing.sandbox import Sandbox
from tests.conftest import Core, make_job, sandbox_requests

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TEXT = TextMessage(type="text", text="hi")
TEMPLATE = WhatsAppTemplate(type="whatsapp_template", name="order_update", language="en_US")


def tagged(tag: str) -> TextMessage:
    return TextMessage(type="text", text="hi", message_tag=tag)


@pytest.mark.parametrize(
    ("channel", "message", "hours_ago", "closed"),
    [
        (ChannelType.WHATSAPP, TEXT, 23.9, False),
        (ChannelType.WHATSAPP, TEXT, 24.1, True),
        (ChannelType.WHATSAPP, TEMPLATE, 24 * 30, False),
        (ChannelType.MESSENGER, TEXT, 24.1, True),
        (ChannelType.MESSENGER, tagged("HUMAN_AGENT"), 24 * 6.9, False),
        (ChannelType.MESSENGER, tagged("HUMAN_AGENT"), 24 * 7.1, True),
        (ChannelType.MESSENGER, tagged("POST_PURCHASE_UPDATE"), 24 * 90, False),
        (ChannelType.INSTAGRAM, tagged("HUMAN_AGENT"), 24 * 6.9, False),
        (ChannelType.INSTAGRAM, TEXT, 24.1, True),
        (ChannelType.INSTAGRAM, tagged("POST_PURCHASE_UPDATE"), 24.1, True),
        (
            ChannelType.MESSENGER,
            MediaMessage(
                type="media",
                attachments=[{"url": "https://x.test/a.png", "kind": "image"}],  # type: ignore[list-item]
            ),
            25,
            True,
        ),
        (ChannelType.TELEGRAM, TEXT, 24 * 365, False),
        (ChannelType.TWILIO_SMS, TEXT, 24 * 365, False),
    ],
)
def test_window_rules(
    channel: ChannelType, message: object, hours_ago: float, closed: bool
) -> None:
    last = NOW - timedelta(hours=hours_ago)
    if closed:
        with pytest.raises(WindowClosed) as caught:
            check_window(channel, message, last, NOW)  # type: ignore[arg-type]
        assert caught.value.code == "window_closed" and not caught.value.retryable
    else:
        check_window(channel, message, last, NOW)  # type: ignore[arg-type]


def test_unknown_last_interaction_lets_the_provider_decide() -> None:
    check_window(ChannelType.WHATSAPP, TEXT, None, NOW)


def hours_ago(hours: float) -> datetime:
    return datetime.now(UTC) - timedelta(hours=hours)


def psid() -> str:
    return str(uuid.uuid4().int % 10**15)


@pytest.mark.parametrize(
    ("tag", "hours", "expected"),
    [
        (None, 2, "message.sent"),
        (None, 48, "message.failed"),
        ("HUMAN_AGENT", 48, "message.sent"),
        ("HUMAN_AGENT", 24 * 8, "message.failed"),
    ],
)
def test_messenger_window_is_enforced_before_the_provider_is_called(
    core: Core, sandbox: Sandbox, tag: str | None, hours: int, expected: str
) -> None:
    recipient = psid()
    last = hours_ago(hours).strftime("%Y-%m-%dT%H:%M:%SZ")
    message: dict[str, Any] = {"type": "text", "text": "Your order shipped"}
    if tag:
        message["message_tag"] = tag
    job = make_job(
        [{"channel_id": "fb", "identifier": recipient, "last_interaction_at": last}],
        message=message,
    )
    event = core.send(job)
    assert event.event == expected
    sent = sandbox_requests(sandbox, "messenger", recipient__id=recipient)
    if expected == "message.sent":
        [body] = sent
        assert body["messaging_type"] == ("MESSAGE_TAG" if tag else "RESPONSE")
        assert body.get("tag") == tag
    else:
        assert event.data.error is not None and event.data.error.code == "window_closed"
        assert sent == []


def test_recorded_interaction_reopens_the_window(core: Core, sandbox: Sandbox) -> None:
    # Given the job's snapshot says the contact last wrote on Messenger two days ago
    recipient = psid()
    job = make_job(
        [
            {
                "channel_id": "fb",
                "identifier": recipient,
                "last_interaction_at": utc_stamp(hours_ago(48)),
            }
        ]
    )
    # and an inbound message from them was recorded an hour ago
    at = hours_ago(1)
    core.context.store.record_interaction(
        job["contact"]["id"], "fb", recipient, int(at.timestamp() * 1000), utc_stamp(at)
    )

    # When the job is sent, then the window is open: a plain response goes out
    assert core.send(job).event == "message.sent"
    [body] = sandbox_requests(sandbox, "messenger", recipient__id=recipient)
    assert body["messaging_type"] == "RESPONSE"
