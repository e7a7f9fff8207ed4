"""Messaging windows as data: which sends are refused before the provider is called."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from herald.config import ChannelType
from herald.contract.errors import WindowClosed
from herald.contract.job import MediaMessage, TextMessage, WhatsAppTemplate
from herald.core.windows import check_window

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
