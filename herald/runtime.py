"""Where Herald's URLs come from, and the per-process objects a worker builds once.

:func:`resolve_urls` decides the broker and the state Redis (the embedded server when no
broker is set). :func:`sender` builds the :class:`~herald.pipeline.Sender` of this
process on first use (Redis pool, adapters and their HTTP clients), never per job; a
forked pool child builds its own.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import redis
from pydantic import ValidationError
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from herald import embedded
from herald.adapters import build_adapters
from herald.config import Settings, load_channels
from herald.errors import ConfigError
from herald.pipeline import Sender
from herald.ratelimit import DEFAULT_RATE_LIMITS, ChannelRates, RateLimiter
from herald.snippets import load_snippets
from herald.state import DeliveryStore


@dataclass(frozen=True)
class Urls:
    """The Celery broker and the Redis that holds Herald's state and events."""

    broker: str
    redis: str


def resolve_urls(settings: Settings) -> Urls:
    """The configured broker and Redis, starting the embedded server when no broker is set."""
    if settings.broker_url:
        redis_url = settings.redis_url
        if redis_url is None:
            if not settings.broker_url.startswith(("redis://", "rediss://", "redis+socket://")):
                raise ConfigError("HERALD_REDIS_URL is required when the broker is not Redis")
            redis_url = settings.broker_url
        return Urls(settings.broker_url, redis_url)
    server = embedded.ensure(settings.data_dir)
    return Urls(server.url, settings.redis_url or server.url)


#: How long the state store may be unreachable (a Redis restart, a failover) before a
#: job gives up and goes back to the queue: retries with backoff capped at 3 s.
STORE_RETRY = Retry(ExponentialWithJitterBackoff(base=0.1, cap=3.0), retries=20)


def redis_client(url: str, *, max_connections: int) -> redis.Redis:
    """A Redis client whose pool blocks (rather than fails) when every connection is busy,
    and that rides out a short outage by retrying. Every state change is a Lua script
    whose re-run is harmless (a claim by the same token, a finish already done)."""
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=10,
        socket_timeout=10,
        socket_connect_timeout=5,
        health_check_interval=30,
        decode_responses=True,
        retry=STORE_RETRY,
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
    )
    return redis.Redis(connection_pool=pool)


def build_sender(settings: Settings) -> Sender:
    """Everything a worker process needs to send, built from the settings."""
    channels = load_channels(settings.channels_file)
    adapters = build_adapters(channels, settings)
    client = redis_client(
        resolve_urls(settings).redis, max_connections=settings.worker_concurrency + 4
    )
    store = DeliveryStore(
        client,
        events_stream=settings.events_stream,
        retention_s=settings.state_retention_s,
        lease_s=settings.lease_s,
    )
    limiter = RateLimiter(client, rate_limits(settings))
    return Sender(
        settings, channels, adapters, store, load_snippets(settings.snippets_file), limiter
    )


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
    with _lock:
        if _sender is not None:
            for adapter in _sender.adapters.values():
                adapter.close()
            _sender.store.redis.close()
        _sender = None
