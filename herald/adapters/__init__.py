"""Channel adapters: one module per provider, chosen by channel type.

Adapters call httpx (or SMTP) and nothing of Herald's above them; :func:`build_adapters`
makes one per configured channel, once per worker process.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from herald.adapters.base import Adapter, AnyAdapter, Outbound, Part
from herald.adapters.custom import CustomAdapter
from herald.adapters.email.sendgrid import SendGridAdapter
from herald.adapters.email.smtp import SmtpAdapter
from herald.adapters.http import ClientPool
from herald.adapters.line import LineAdapter
from herald.adapters.meta.instagram import InstagramAdapter
from herald.adapters.meta.messenger import MessengerAdapter
from herald.adapters.meta.whatsapp import WhatsAppAdapter
from herald.adapters.telegram import TelegramAdapter
from herald.adapters.twilio_sms import TwilioSmsAdapter
from herald.adapters.viber import ViberAdapter
from herald.config import ChannelConfig, ChannelType, Settings
from herald.contract.errors import ConfigError
from herald.files.library import Library

ADAPTERS: Mapping[ChannelType, type[AnyAdapter]] = {
    ChannelType.TELEGRAM: TelegramAdapter,
    ChannelType.WHATSAPP: WhatsAppAdapter,
    ChannelType.MESSENGER: MessengerAdapter,
    ChannelType.INSTAGRAM: InstagramAdapter,
    ChannelType.CUSTOM: CustomAdapter,
    ChannelType.TWILIO_SMS: TwilioSmsAdapter,
    ChannelType.LINE: LineAdapter,
    ChannelType.VIBER: ViberAdapter,
    ChannelType.SENDGRID: SendGridAdapter,
    ChannelType.EMAIL_SMTP: SmtpAdapter,
}


def adapter_class(channel: ChannelConfig) -> type[AnyAdapter]:
    """The adapter class for a channel, or :class:`ConfigError` if Herald has none."""
    try:
        return ADAPTERS[ChannelType(channel.type)]
    except KeyError:
        supported = ", ".join(sorted(ADAPTERS))
        raise ConfigError(
            f"channel {channel.id!r}: type {channel.type} has no adapter in this version"
            f" (supported: {supported})"
        ) from None


def build_adapters(
    channels: Mapping[str, ChannelConfig], settings: Settings, library: Library | None = None
) -> dict[str, AnyAdapter]:
    """One adapter per configured channel, each with its own pool of HTTP clients (all
    sharing one SSL context), and the process's file library.

    Every provider call must end within a third of the job's lease: the lease is renewed
    before each try of a part (and a part of an email may download attachments, then
    send), and a call outliving it lets a second worker send the job again.
    """
    adapters: dict[str, AnyAdapter] = {}
    ssl_context = httpx.create_ssl_context()
    deadline_s = settings.lease_s / 3
    for channel_id, channel in channels.items():
        pool = ClientPool(
            connect_timeout=settings.http_connect_timeout_s,
            timeout=settings.http_timeout_s,
            max_clients=settings.worker_concurrency + settings.batch_concurrency,
            ssl_context=ssl_context,
            deadline_s=deadline_s,
        )
        adapters[channel_id] = adapter_class(channel)(
            channel,
            pool,
            deadline_s=deadline_s,
            fetch_allow_networks=settings.fetch_allow_networks,
            webhook_url=settings.webhook_url(channel_id),
            library=library,
        )
    return adapters


__all__ = [
    "ADAPTERS",
    "Adapter",
    "AnyAdapter",
    "Outbound",
    "Part",
    "adapter_class",
    "build_adapters",
]
