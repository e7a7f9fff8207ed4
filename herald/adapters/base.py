"""What every channel adapter is: plan a rendered message into parts, deliver one part.

A message that a provider takes in one request is one part; media on a channel
that takes one attachment per request is one part per attachment. The pipeline
delivers parts in order and records each part's ids, so a retry never resends a
part that was already accepted. Adapters know their provider and nothing of
Herald above them: no Redis, no Celery, no retry loop.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from herald.adapters.http import ClientPool
from herald.config import ChannelConfig, ChannelType
from herald.job import AnyMessage, Workflow


@dataclass(frozen=True)
class Outbound:
    """A rendered message on its way to one recipient on one channel."""

    job_id: str
    channel_id: str
    contact_id: str
    recipient: str
    message: AnyMessage
    workflow: Workflow | None = None


@dataclass(frozen=True)
class Part:
    """One provider request of a message: what to send and where in the message it sits."""

    index: int
    payload: dict[str, Any] = field(default_factory=dict)


class Adapter(ABC):
    """A provider client for one configured channel.

    Subclasses set :attr:`channel_type` and implement :meth:`plan` and :meth:`deliver`;
    :meth:`deliver` raises a :class:`herald.errors.SendError` subclass on failure.
    """

    channel_type: ClassVar[ChannelType]
    #: Whether the provider deduplicates a resent request (an idempotency key).
    dedupes: ClassVar[bool] = False

    def __init__(self, channel: ChannelConfig, http: ClientPool) -> None:
        self.channel = channel
        self.http = http

    @abstractmethod
    def plan(self, out: Outbound) -> list[Part]:
        """Split a message into provider requests; raise ``InvalidContent`` on a broken limit."""

    @abstractmethod
    def deliver(self, out: Outbound, part: Part) -> list[str]:
        """Send one part; return the provider message ids it produced."""

    def close(self) -> None:
        """Release the adapter's HTTP clients."""
        self.http.close()
