"""Connections: where the broker and the state Redis are, and the clients to them.

:func:`resolve_urls` decides the broker and the state Redis (the embedded server when no
broker is set); :func:`build_store` makes a delivery store on the state Redis.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from herald.config import Settings
from herald.contract.errors import ConfigError
from herald.store import embedded
from herald.store.records import JobRecords


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


def redis_client(url: str, *, max_connections: int, decode: bool = True) -> redis.Redis:
    """A Redis client whose pool blocks (rather than fails) when every connection is busy,
    and that rides out a short outage by retrying. Every state change is a Lua script
    whose re-run is harmless (a claim by the same token, a finish already done).
    ``decode=False`` answers bytes (the file library's chunks)."""
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=10,
        socket_timeout=10,
        socket_connect_timeout=5,
        health_check_interval=30,
        decode_responses=decode,
        retry=STORE_RETRY,
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
    )
    return redis.Redis(connection_pool=pool)


def build_store(settings: Settings, *, max_connections: int) -> JobRecords:
    """The job records on the state Redis of ``settings``."""
    client = redis_client(resolve_urls(settings).redis, max_connections=max_connections)
    return JobRecords(
        client,
        events_stream=settings.events_stream,
        retention_s=settings.state_retention_s,
        lease_s=settings.lease_s,
        margin_s=settings.sweep_margin_s,
        events_retention_s=settings.events_retention_s,
        status_stream=settings.status_stream,
    )
