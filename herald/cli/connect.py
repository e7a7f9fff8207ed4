"""Where the CLI's Redis and broker are, and whether they answer, before any work.

Every command that needs Redis or the broker asks here first: one quick ping with short
timeouts. An unreachable server is then one line naming its URL (password hidden) and
the variable it came from, within seconds, rather than a minute of a client's retries
and a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from herald.config import Settings, redact_url
from herald.store.connection import resolve_urls

#: Seconds to connect, and to wait for a ping's answer.
CHECK_TIMEOUT_S = 3.0
#: Seconds a command's socket waits for an answer: longer than any blocking read's block.
SOCKET_TIMEOUT_S = 15.0
REDIS_SCHEMES = ("redis://", "rediss://", "unix://", "redis+socket://")


@dataclass(frozen=True)
class Endpoint:
    """A server the CLI talks to: what it is, its URL, and the setting it came from."""

    role: str
    url: str
    source: str

    def describe(self) -> str:
        """``the broker at redis://:****@host:6379/0 (HERALD_BROKER_URL)``."""
        return f"{self.role} at {redact_url(self.url)} ({self.source})"

    @property
    def is_redis(self) -> bool:
        return self.url.startswith(REDIS_SCHEMES)

    def hide(self, text: str) -> str:
        """``text`` with this URL's password, if any, replaced by ``****``."""
        password = urlsplit(self.url).password
        if not password:
            return text
        return text.replace(password, "****").replace(unquote(password), "****")


class Unreachable(Exception):
    """Raised when a server does not answer; the message is the one line to print."""

    def __init__(self, endpoint: Endpoint, error: BaseException) -> None:
        reason = endpoint.hide(str(error).strip() or type(error).__name__)
        super().__init__(f"cannot reach {endpoint.describe()}: {reason}")
        self.endpoint = endpoint


class Session:
    """What a command runs with: the settings, and the servers they name (resolved once:
    with no broker set this starts the embedded Redis)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def endpoints(self) -> tuple[Endpoint, Endpoint]:
        """(broker, state Redis)."""
        settings = self.settings
        urls = resolve_urls(settings)
        if settings.broker_url:
            broker = Endpoint("the broker", urls.broker, "HERALD_BROKER_URL")
        else:
            embedded = f"the embedded Redis of {settings.data_dir}; or set HERALD_BROKER_URL"
            broker = Endpoint("the broker", urls.broker, embedded)
        if settings.redis_url:
            state = Endpoint("Redis", urls.redis, "HERALD_REDIS_URL")
        else:
            state = Endpoint("Redis", urls.redis, broker.source)
        return broker, state

    @property
    def broker(self) -> Endpoint:
        return self.endpoints[0]

    @property
    def state(self) -> Endpoint:
        return self.endpoints[1]

    def redis(self, *, socket_timeout: float = SOCKET_TIMEOUT_S, retries: int = 2) -> redis.Redis:
        """A client of the state Redis, checked to answer first (:class:`Unreachable`)."""
        check_redis(self.state)
        return client_for(self.state, socket_timeout=socket_timeout, retries=retries)

    def check_broker(self) -> None:
        """Raise :class:`Unreachable` unless the broker (and the state Redis) answer."""
        check_redis(self.state)
        if self.broker.url != self.state.url:
            check_broker(self.broker)


def client_for(endpoint: Endpoint, *, socket_timeout: float, retries: int) -> redis.Redis:
    """A Redis client of ``endpoint`` with short connect timeouts and few retries."""
    return redis.Redis.from_url(
        endpoint.url,
        socket_connect_timeout=CHECK_TIMEOUT_S,
        socket_timeout=socket_timeout,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.1), retries),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError] if retries else [],
    )


def check_redis(endpoint: Endpoint) -> None:
    """Raise :class:`Unreachable` unless ``endpoint`` answers a PING within seconds."""
    client = client_for(endpoint, socket_timeout=CHECK_TIMEOUT_S, retries=1)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        raise Unreachable(endpoint, exc) from None
    finally:
        client.close()


def check_broker(endpoint: Endpoint) -> None:
    """Raise :class:`Unreachable` unless the broker of ``endpoint`` accepts a connection."""
    if endpoint.is_redis:
        check_redis(endpoint)
        return
    from celery import Celery

    app = Celery("herald-check", broker=endpoint.url, set_as_current=False)
    app.conf.broker_connection_timeout = CHECK_TIMEOUT_S
    connection = app.connection_for_write()
    try:
        connection.ensure_connection(max_retries=1, interval_start=0.2, timeout=CHECK_TIMEOUT_S)
    except Exception as exc:  # any transport's error means the same to an operator
        raise Unreachable(endpoint, exc) from None
    finally:
        connection.release()
        app.close()


def lost(endpoint: Endpoint, error: BaseException) -> str:
    """The one line for a connection lost in the middle of a command."""
    reason = str(error).strip() or type(error).__name__
    return f"lost {endpoint.describe()}: {endpoint.hide(reason)}"
