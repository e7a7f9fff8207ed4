"""Herald's settings: one typed object read from the ``HERALD_*`` environment variables.

The table of every variable is in docs/contract.md#configuration.
"""

from __future__ import annotations

import os
import re
from enum import StrEnum
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import quote

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from herald.contract.job import DEFAULT_BATCH_MAX
from herald.contract.names import (
    DEFAULT_EVENTS_STREAM,
    DEFAULT_INBOUND_STREAM,
    DEFAULT_QUEUE,
    DEFAULT_STATUS_STREAM,
    WEBHOOK_PATH,
)


def default_data_dir() -> Path:
    """Where the embedded Redis keeps its data: ``$XDG_DATA_HOME/herald``."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "herald"


class InDoubtPolicy(StrEnum):
    """What to do when a send may have reached a provider that does not dedupe."""

    AT_LEAST_ONCE = "at_least_once"
    AT_MOST_ONCE = "at_most_once"


class Settings(BaseSettings):
    """Every ``HERALD_*`` variable (docs/contract.md#configuration), typed, with its default."""

    model_config = SettingsConfigDict(env_prefix="HERALD_", extra="ignore")

    broker_url: str | None = None
    redis_url: str | None = None
    channels_file: Path = Path("channels.toml")
    snippets_file: Path = Path("snippets.toml")
    events_stream: str = DEFAULT_EVENTS_STREAM
    #: How long the outcome stream keeps an event: older ones are trimmed as events are
    #: added (XADD MINID ~), so the stream does not grow without bound.
    events_retention_s: float = Field(default=7 * 24 * 3600, gt=0)
    #: Inbound messages from provider webhooks (docs/webhooks.md#what-the-streams-carry).
    inbound_stream: str = DEFAULT_INBOUND_STREAM
    #: Delivery statuses of sent messages, from provider webhooks.
    status_stream: str = DEFAULT_STATUS_STREAM
    #: Where ``herald webhooks`` listens: ``host:port``.
    webhooks_bind: Annotated[str, Field(pattern=r"^\[?[\w.:-]*\]?:\d{1,5}$")] = "127.0.0.1:8088"
    #: The public URL providers reach ``herald webhooks`` at (``https://hooks.example``),
    #: behind a proxy: Twilio's signatures are checked against it, and sends ask Twilio for
    #: status callbacks there. Unset: no status callbacks are asked for.
    webhooks_public_url: (
        Annotated[str, Field(pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")] | None
    ) = None
    #: The file library (docs/content.md#the-file-library): the largest file it takes, and
    #: the bytes it may hold in all (its Redis store's quota).
    files_max_bytes: int = Field(default=100 * 1000 * 1000, ge=1)
    files_quota_bytes: int = Field(default=1024 * 1024 * 1024, ge=1)
    #: Where providers that only take URLs fetch library files (``herald webhooks`` serves
    #: ``/files/<id>`` there); unset: ``HERALD_WEBHOOKS_PUBLIC_URL``.
    files_public_url: Annotated[str, Field(pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")] | None = (
        None
    )
    #: The key file URLs are signed with (shared by workers and ``herald webhooks``);
    #: unset: a random key Herald keeps in Redis.
    files_signing_key: SecretStr | None = None
    #: How long a signed file URL stays valid (default 7 days; rounded up to the hour).
    files_url_ttl_s: float = Field(default=7 * 24 * 3600, gt=0)
    #: The queue of single jobs: workers consume it, ``herald send`` publishes to it.
    queue: str = DEFAULT_QUEUE
    #: The queue of batches (``enqueue_many``); unset: ``<HERALD_QUEUE>.bulk``.
    bulk_queue: str | None = None
    #: The most jobs one ``herald.send_batch`` call may carry.
    batch_max: int = Field(default=DEFAULT_BATCH_MAX, ge=1)
    #: How many jobs of batches one worker process sends at once.
    batch_concurrency: int = Field(default=64, ge=1)
    timezone: str = "UTC"
    retry_max_attempts: int = Field(default=8, ge=1)
    retry_max_age_s: float = Field(default=3600, gt=0)
    retry_backoff_s: float = Field(default=1, gt=0)
    retry_backoff_max_s: float = Field(default=300, gt=0)
    #: Waits up to this long are retried inside the call; longer ones go back to the queue.
    retry_inline_max_s: float = Field(default=2, ge=0)
    in_doubt: InDoubtPolicy = InDoubtPolicy.AT_LEAST_ONCE
    #: How long a job's delivery record is kept (default 7 days).
    state_retention_s: int = Field(default=7 * 24 * 3600, gt=0)
    #: How long one worker may hold a job before another copy may take it over.
    lease_s: int = Field(default=120, gt=0)
    #: Seconds an unacked message stays invisible before a Redis broker redelivers it (Herald
    #: holds no message for its retries: they wait in the job's record).
    visibility_timeout_s: int = Field(default=1800, ge=4)
    #: How long a queued job may go unclaimed, or a job cut off mid-send stay unclaimed
    #: after its lease ended, before the sweeper looks at it (and publishes it again if lost).
    sweep_margin_s: float = Field(default=30, gt=0)
    #: The port of this worker's Prometheus metrics (unset: none are served).
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    #: The address the metrics server listens on.
    metrics_bind: str = "0.0.0.0"
    #: Tests only: a Redis set of task ids whose next message the worker's transport drops
    #: right after popping it, as a worker killed between kombu's BRPOP and its unacked
    #: record would (docs/delivery.md#the-sweeper).
    test_drop_set: str | None = None
    #: Fleet-wide rate limits per channel type, over the providers' defaults, e.g.
    #: ``{"telegram": {"channel": "30/s", "recipient": "1/s"}}`` (JSON in the environment).
    rate_limits: dict[str, dict[str, str | None]] = Field(default_factory=dict)
    #: Embedded Redis data folder, used when no broker is set.
    data_dir: Path = Field(default_factory=default_data_dir)
    #: The pools Herald documents and tests (tests/test_worker_pools.py); eventlet is not one.
    worker_pool: Literal["threads", "prefork", "gevent", "solo"] = "threads"
    worker_concurrency: int = Field(default=100, ge=1)
    #: The queues a worker consumes, in the order it takes from them (single jobs first);
    #: unset: the queue, then the bulk queue. Comma-separated in the environment.
    worker_queues: Annotated[tuple[str, ...] | None, NoDecode] = None
    #: Messages each slot holds beyond the one it runs (Celery's prefetch multiplier).
    worker_prefetch: int = Field(default=1, ge=1)
    #: Worker processes ``herald worker`` runs (unset: one per core of the host).
    worker_processes: int | None = Field(default=None, ge=1)
    #: Provider HTTP timeouts, in seconds.
    http_connect_timeout_s: float = 5.0
    http_timeout_s: float = 15.0
    #: The largest job (its JSON, in bytes) a worker takes; a larger one is ``invalid_job``.
    max_payload_bytes: int = Field(default=256 * 1024, ge=1024)
    #: Networks that URL fetches may reach although private or loopback, as CIDRs separated
    #: by commas (``127.0.0.1/32,10.1.0.0/16``); every other such address is refused.
    fetch_allow_networks: Annotated[tuple[IPv4Network | IPv6Network, ...], NoDecode] = ()

    @field_validator("worker_queues", mode="before")
    @classmethod
    def _queues(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip()) or None
        return value

    @property
    def bulk(self) -> str:
        """The queue of batches."""
        return self.bulk_queue or f"{self.queue}.bulk"

    @property
    def consumed(self) -> tuple[str, ...]:
        """The queues a worker consumes, single jobs first."""
        return self.worker_queues or (self.queue, self.bulk)

    def webhook_url(self, channel_id: str) -> str | None:
        """The public URL of a channel's webhook, when ``HERALD_WEBHOOKS_PUBLIC_URL`` is set."""
        if not self.webhooks_public_url:
            return None
        path = WEBHOOK_PATH.format(channel_id=quote(channel_id, safe=""))
        return self.webhooks_public_url.rstrip("/") + path

    @property
    def files_url(self) -> str | None:
        """The public base URL of signed file links."""
        return self.files_public_url or self.webhooks_public_url

    @field_validator("fetch_allow_networks", mode="before")
    @classmethod
    def _networks(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(ip_network(part.strip()) for part in value.split(",") if part.strip())
        return value


def redact_url(url: str) -> str:
    """A URL with any password replaced, for logs and tables."""
    return re.sub(r"(//[^:/@]*:)[^@/]*@", r"\1****@", url)
