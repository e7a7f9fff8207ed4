"""The per-process objects a worker builds once.

:func:`sender` builds the :class:`~herald.pipeline.Sender` of this process on first use
(Redis pool, adapters and their HTTP clients), never per job; a forked pool child builds
its own.
"""

from __future__ import annotations

import os
import threading
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError

from herald.adapters import adapter_class, build_adapters
from herald.config import Settings, load_channels
from herald.config.snippets import load_snippets
from herald.contract.errors import ConfigError
from herald.core.pipeline import Sender
from herald.store import connection as connect
from herald.store.connection import build_store
from herald.store.ratelimit import DEFAULT_RATE_LIMITS, ChannelRates, RateLimiter


def build_sender(settings: Settings) -> Sender:
    """Everything a worker process needs to send, built from the settings."""
    channels = load_channels(settings.channels_file)
    adapters = build_adapters(channels, settings)
    store = build_store(settings, max_connections=settings.worker_concurrency + 4)
    limiter = RateLimiter(store.redis, rate_limits(settings))
    return Sender(
        settings, channels, adapters, store, load_snippets(settings.snippets_file), limiter
    )


def validate(settings: Settings) -> None:
    """Check everything a worker reads from its settings, without connecting anywhere;
    raise :class:`ConfigError` with a message for people."""
    for channel in load_channels(settings.channels_file).values():
        adapter_class(channel)
    rate_limits(settings)
    load_snippets(settings.snippets_file)
    try:
        ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"HERALD_TIMEZONE: unknown time zone {settings.timezone!r}") from exc


def rate_limits(settings: Settings) -> dict[str, ChannelRates]:
    """The providers' default limits with ``HERALD_RATE_LIMITS`` over them."""
    try:
        given = {k: ChannelRates.model_validate(v) for k, v in settings.rate_limits.items()}
    except ValidationError as exc:
        raise ConfigError(f"HERALD_RATE_LIMITS: {exc.errors()[0]['msg']}") from exc
    return {**DEFAULT_RATE_LIMITS, **given}


_lock = threading.Lock()
_sender: Sender | None = None
_pid: int | None = None


def sender() -> Sender:
    """This process's sender, built on first use."""
    global _sender, _pid
    with _lock:
        if _sender is None or _pid != os.getpid():
            _sender = build_sender(Settings())
            _pid = os.getpid()
        return _sender


def reset() -> None:
    """Forget this process's sender (tests, and settings changes)."""
    global _sender
    connect.reset()
    with _lock:
        if _sender is not None:
            for adapter in _sender.adapters.values():
                adapter.close()
            _sender.store.redis.close()
        _sender = None
