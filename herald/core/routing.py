"""Channel selection (docs/contract.md#which-channel-is-used): which channel and identifier."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from herald.config import ChannelConfig
from herald.contract.errors import NoChannel, UnknownChannel
from herald.contract.job import LAST_INTERACTED, SendJob


@dataclass(frozen=True)
class Route:
    """The chosen channel, the contact's identifier on it, and its last known interaction."""

    channel: ChannelConfig
    identifier: str
    last_interaction_at: datetime | None


@dataclass(frozen=True)
class _Candidate:
    channel_id: str
    identifier: str
    last: datetime | None
    order: int


def _candidates(job: SendJob, recorded: Mapping[str, Mapping[str, Any]]) -> list[_Candidate]:
    """The job's snapshot merged with recorded interactions; the newest interaction wins."""
    merged: dict[str, _Candidate] = {}
    for order, snap in enumerate(job.contact.channels):
        if snap.channel_id not in merged:
            merged[snap.channel_id] = _Candidate(
                snap.channel_id, snap.identifier, snap.last_interaction_at, order
            )
    for channel_id, rec in recorded.items():
        at = datetime.fromtimestamp(int(rec["at_ms"]) / 1000, UTC)
        known = merged.get(channel_id)
        if known is None:
            merged[channel_id] = _Candidate(channel_id, str(rec["identifier"]), at, len(merged))
        elif known.last is None or at > known.last:
            merged[channel_id] = _Candidate(channel_id, str(rec["identifier"]), at, known.order)
    return list(merged.values())


def select_channel(
    job: SendJob,
    channels: Mapping[str, ChannelConfig],
    recorded: Mapping[str, Mapping[str, Any]],
) -> Route:
    """Pick the job's channel, or raise :class:`UnknownChannel` / :class:`NoChannel`."""
    candidates = _candidates(job, recorded)
    if job.channel != LAST_INTERACTED:
        if job.channel not in channels:
            raise UnknownChannel(f"channel {job.channel!r} is not in the channels file")
        for cand in candidates:
            if cand.channel_id == job.channel:
                return Route(channels[cand.channel_id], cand.identifier, cand.last)
        raise NoChannel(f"contact {job.contact.id} has no identifier on channel {job.channel!r}")
    usable = [c for c in candidates if c.channel_id in channels]
    if not usable:
        raise NoChannel(f"contact {job.contact.id} has no identifier on any connected channel")
    # Channels with a known interaction first, newest first; then the snapshot's order.
    best = min(
        usable,
        key=lambda c: (c.last is None, -(c.last.timestamp() if c.last else 0.0), c.order),
    )
    return Route(channels[best.channel_id], best.identifier, best.last)
