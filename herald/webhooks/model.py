"""What the webhook intake passes between its steps: the call as received, and the
normalized records parsing makes of it (docs/webhooks.md#what-the-streams-carry)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

#: A status Herald reports, and its rank: a status is news only above the message's rank.
StatusName = Literal["delivered", "read", "undelivered"]
RANKS: Mapping[StatusName, int] = {"delivered": 1, "undelivered": 1, "read": 2}


@dataclass(frozen=True)
class Call:
    """One HTTP call of a provider, as received (nothing of it is logged)."""

    method: str
    #: The URL as the server received it (scheme and host from the request).
    url: str
    path: str
    #: The query string, undecoded ("" when there is none).
    query: str
    #: Header names in lower case.
    headers: Mapping[str, str]
    body: bytes
    received: datetime


@dataclass(frozen=True)
class Inbound:
    """A contact wrote to us."""

    channel_id: str
    channel_type: str
    #: The contact as Herald keys them on the channel (herald.core.identities).
    identity: str
    #: The contact's identifier as the provider gave it.
    identifier: str
    provider_message_id: str | None
    text: str | None
    #: When the contact wrote, by the provider; None when it does not say.
    at: datetime | None
    raw_type: str
    #: The provider's dedupe key of this event.
    event_id: str


@dataclass(frozen=True)
class Status:
    """A provider's report on one message Herald sent."""

    channel_id: str
    channel_type: str
    provider_message_id: str
    status: StatusName
    #: The provider's time of the status; None when it does not say.
    at: datetime | None
    #: The ``error`` object of an undelivered message (as in an outcome event).
    error: dict[str, Any] | None = None
    #: The job_id the webhook itself carries (SendGrid's custom_args), if any.
    job_hint: str | None = None


@dataclass(frozen=True)
class Watermark:
    """A receipt for every message sent to a contact up to a time (Messenger's)."""

    channel_id: str
    channel_type: str
    identity: str
    status: StatusName
    #: Every message sent up to this instant (Unix ms) has the status.
    upto_ms: int
    at: datetime | None


Item = Inbound | Status | Watermark
