"""How a contact is known on a channel: the identifier as providers' webhooks name them.

A job may write a contact's number as ``+351 911 111 111``; WhatsApp's webhooks say
``351911111111`` and Twilio's ``+351911111111``. Herald learns ``(channel, identity) →
contact`` from the jobs it sends and looks replies up by the identity a webhook carries,
so both sides go through :func:`identity` (docs/webhooks.md#inbound-messages).
"""

from __future__ import annotations

import re

from herald.config import ChannelType

_NOT_DIGIT = re.compile(r"\D")
#: Channel types that name a contact by a phone number.
_PHONE_TYPES = frozenset({ChannelType.WHATSAPP, ChannelType.TWILIO_SMS})
#: Channel types that name a contact by an email address (case does not matter).
_EMAIL_TYPES = frozenset({ChannelType.SENDGRID, ChannelType.EMAIL_SMTP})


def identity(channel_type: str, identifier: str) -> str:
    """The form of ``identifier`` Herald keys a contact by on a channel of ``channel_type``:
    the digits of a phone number, an email address in lower case, else as written."""
    kind = ChannelType(channel_type)
    value = identifier.strip()
    if kind in _PHONE_TYPES:
        digits = _NOT_DIGIT.sub("", value)
        return digits or value
    if kind in _EMAIL_TYPES:
        return value.lower()
    return value
