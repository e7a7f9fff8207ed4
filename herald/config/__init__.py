"""Configuration: the ``HERALD_*`` settings, the channels file and the snippets file.

Everything here is read and validated without connecting anywhere.
"""

from herald.config.channels import (
    ChannelBase,
    ChannelConfig,
    ChannelType,
    CustomChannel,
    InstagramChannel,
    LineChannel,
    MessengerChannel,
    SendGridChannel,
    SmtpChannel,
    TelegramChannel,
    TwilioSmsChannel,
    ViberChannel,
    WhatsAppChannel,
    load_channels,
    parse_channels,
)
from herald.config.settings import InDoubtPolicy, Settings, default_data_dir, redact_url

__all__ = [
    "ChannelBase",
    "ChannelConfig",
    "ChannelType",
    "CustomChannel",
    "InDoubtPolicy",
    "InstagramChannel",
    "LineChannel",
    "MessengerChannel",
    "SendGridChannel",
    "Settings",
    "SmtpChannel",
    "TelegramChannel",
    "TwilioSmsChannel",
    "ViberChannel",
    "WhatsAppChannel",
    "default_data_dir",
    "load_channels",
    "parse_channels",
    "redact_url",
]
