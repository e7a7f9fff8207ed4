"""Messaging windows, as data per channel type (docs/contract.md#which-channel-is-used).

Meta's channels let a business send free-form messages only for a while after the
contact's last message. When Herald knows that moment, a send the window forbids fails
with ``window_closed`` before any provider call; when it does not, the provider decides
(and its window error maps to the same code).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from herald.config import ChannelType
from herald.contract.errors import WindowClosed
from herald.contract.job import AnyMessage

DAY = timedelta(days=1)


@dataclass(frozen=True)
class Window:
    """How long after the contact's last message a channel accepts free-form messages."""

    free_form: timedelta
    #: Message types allowed at any time (WhatsApp templates).
    exempt_types: frozenset[str] = frozenset()
    #: Message tags and the window each opens; None means no limit.
    tags: Mapping[str, timedelta | None] = field(default_factory=dict)


WINDOWS: Mapping[ChannelType, Window] = {
    ChannelType.WHATSAPP: Window(DAY, exempt_types=frozenset({"whatsapp_template"})),
    ChannelType.MESSENGER: Window(
        DAY,
        tags={
            "HUMAN_AGENT": 7 * DAY,
            "CONFIRMED_EVENT_UPDATE": None,
            "POST_PURCHASE_UPDATE": None,
            "ACCOUNT_UPDATE": None,
        },
    ),
    ChannelType.INSTAGRAM: Window(DAY, tags={"HUMAN_AGENT": 7 * DAY}),
}


def check_window(
    channel_type: ChannelType,
    message: AnyMessage,
    last_interaction_at: datetime | None,
    now: datetime,
) -> None:
    """Raise :class:`WindowClosed` when the channel's window forbids ``message`` now."""
    window = WINDOWS.get(channel_type)
    if window is None or last_interaction_at is None or message.type in window.exempt_types:
        return
    tag = getattr(message, "message_tag", None)
    limit: timedelta | None = window.free_form
    if tag is not None and tag in window.tags:
        limit = window.tags[tag]
    if limit is None:
        return
    elapsed = now - last_interaction_at
    if elapsed > limit:
        hours = elapsed.total_seconds() / 3600
        allowed = f"{limit.total_seconds() / 3600:g} h"
        what = f"tag {tag}" if tag in window.tags else "free-form messages"
        raise WindowClosed(
            f"{channel_type} window closed: last interaction {hours:.1f} h ago, {what} "
            f"allowed for {allowed}"
            + (" (use a template)" if channel_type == ChannelType.WHATSAPP else "")
        )
