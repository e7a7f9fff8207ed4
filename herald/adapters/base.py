"""What every channel adapter is: plan a rendered message into parts, deliver one part.

A message that a provider takes in one request is one part; media on a channel
that takes one attachment per request is one part per attachment. The pipeline
delivers parts in order and records each part's ids, so a retry never resends a
part that was already accepted. Adapters know their provider and nothing of
Herald above them: no Redis, no Celery, no retry loop.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network
from typing import Any, ClassVar, Generic, cast

from typing_extensions import TypeVar

from herald.adapters.http import ClientPool
from herald.adapters.masking import Mask, secret_values
from herald.config import ChannelBase, ChannelConfig, ChannelType
from herald.contract.errors import ConfigError, InvalidContent
from herald.contract.job import AnyMessage, Workflow
from herald.files.library import Library
from herald.files.store import FileInfo


@dataclass(frozen=True)
class Outbound:
    """A rendered message on its way to one recipient on one channel."""

    job_id: str
    channel_id: str
    contact_id: str
    recipient: str
    message: AnyMessage
    workflow: Workflow | None = None
    #: The library files the message sends (by ``file_id``), as the pipeline found them.
    files: Mapping[str, FileInfo] = field(default_factory=dict)


#: What a part carries, one type per adapter; a bare ``Part`` is a part of any adapter.
P = TypeVar("P", default=Any)
C = TypeVar("C", bound=ChannelBase)


@dataclass(frozen=True)
class Part(Generic[P]):
    """One provider request of a message: where in the message it sits, and what to send."""

    index: int
    payload: P


@dataclass(frozen=True)
class JsonBody:
    """A part that is one JSON request body, as planned (LINE, Meta, SendGrid's raw payload)."""

    body: dict[str, Any]
    #: A library file this body sends: the id its provider knows it by goes in at send
    #: time (uploaded by the first worker that needs it).
    file: str | None = None


class Adapter(ABC, Generic[C, P]):
    """A provider client for one configured channel of type ``C``, sending parts of ``P``.

    Subclasses set :attr:`channel_type` and :attr:`config_type`, read what they need from
    the channel in :meth:`setup`, and implement :meth:`plan` and :meth:`send_part`;
    :meth:`send_part` raises a :class:`herald.contract.errors.SendError` on failure.
    """

    channel_type: ClassVar[ChannelType]
    config_type: ClassVar[type[ChannelBase]]
    #: Whether the provider deduplicates a resent request (an idempotency key).
    dedupes: ClassVar[bool] = False
    #: Whether the adapter sends library files itself (an upload, or the bytes); else the
    #: pipeline hands it each library file as a signed URL.
    takes_files: ClassVar[bool] = False

    def __init__(
        self,
        channel: ChannelConfig,
        http: ClientPool,
        *,
        deadline_s: float | None = None,
        fetch_allow_networks: Sequence[IPv4Network | IPv6Network] = (),
        webhook_url: str | None = None,
        library: Library | None = None,
    ) -> None:
        if not isinstance(channel, self.config_type):
            raise ConfigError(f"channel {channel.id} is not a {self.channel_type} channel")
        self.channel: C = cast(C, channel)
        self.http = http
        #: Seconds one provider call may take in all (shorter than the job's lease); the
        #: pool's by default. None: per-step timeouts only.
        self.deadline_s = http.deadline_s if deadline_s is None else deadline_s
        #: Networks a URL from a job may be fetched from although not public (attachments).
        self.fetch_allow_networks = tuple(fetch_allow_networks)
        #: The public URL of this channel's webhook (``herald webhooks``), when configured:
        #: providers that take a callback URL per message are given it (Twilio).
        self.webhook_url = webhook_url
        #: The file library, for adapters that send library files themselves.
        self.library = library
        #: Hides the channel's secrets in every error text built from a provider's answer.
        self.mask = Mask.of(self.secrets())
        http.hide(self.mask)
        self.setup(self.channel)

    def secrets(self) -> list[str]:
        """What no error text may show: every ``SecretStr`` of the channel.

        An adapter that sends a credential derived from a secret (HTTP Basic, SMTP AUTH,
        half of a token) adds it here. A ``Bearer`` header carries the raw secret, which is
        masked already.
        """
        return secret_values(self.channel)

    def setup(self, channel: C) -> None:
        """Read what the adapter needs from its channel (raise ``ConfigError`` if unusable)."""

    @property
    def files(self) -> Library:
        """The file library (:class:`InvalidContent` when this adapter was built without)."""
        if self.library is None:
            raise InvalidContent(f"{self.channel_type}: no file library is configured here")
        return self.library

    def endpoint(self, default_base: str, path: str) -> str:
        """The provider URL of ``path``, on the channel's ``base_url`` when it has one."""
        return (self.channel.base_url or default_base).rstrip("/") + path

    @abstractmethod
    def plan(self, out: Outbound) -> list[Part[P]]:
        """Split a message into provider requests; raise ``InvalidContent`` on a broken limit."""

    @abstractmethod
    def send_part(self, out: Outbound, part: Part[P]) -> list[str]:
        """Send one part; return the provider message ids it produced."""

    def close(self) -> None:
        """Release the adapter's HTTP clients."""
        self.http.close()


#: An adapter of any channel and payload, for code that handles them all alike.
AnyAdapter = Adapter[Any, Any]
