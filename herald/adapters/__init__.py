"""Channel adapters: one module per provider, chosen by channel type.

Adapters call httpx (or SMTP) and nothing of Herald's above them; :func:`build_adapters`
makes one per configured channel, once per worker process.
"""

from __future__ import annotations

from collections.abc import Mapping

from herald.adapters.base import Adapter, Outbound, Part
from herald.adapters.custom import CustomAdapter
from herald.adapters.http import ClientPool
from herald.adapters.telegram import TelegramAdapter
from herald.config import ChannelConfig, ChannelType, Settings
from herald.errors import ConfigError

ADAPTERS: Mapping[ChannelType, type[Adapter]] = {
    ChannelType.TELEGRAM: TelegramAdapter,
    ChannelType.CUSTOM: CustomAdapter,
}


def adapter_class(channel: ChannelConfig) -> type[Adapter]:
    """The adapter class for a channel, or :class:`ConfigError` if Herald has none."""
    try:
        return ADAPTERS[ChannelType(channel.type)]
    except KeyError:
        supported = ", ".join(sorted(ADAPTERS))
        raise ConfigError(
            f"channel {channel.id!r}: type {channel.type} has no adapter in this version"
            f" (supported: {supported})"
        ) from None


def build_adapters(channels: Mapping[str, ChannelConfig], settings: Settings) -> dict[str, Adapter]:
    """One adapter per configured channel, each with its own pool of HTTP clients."""
    adapters: dict[str, Adapter] = {}
    for channel_id, channel in channels.items():
        pool = ClientPool(
            connect_timeout=settings.http_connect_timeout_s,
            timeout=settings.http_timeout_s,
            max_clients=settings.worker_concurrency,
        )
        adapters[channel_id] = adapter_class(channel)(channel, pool)
    return adapters


__all__ = ["ADAPTERS", "Adapter", "Outbound", "Part", "adapter_class", "build_adapters"]
