"""Fleet-wide rate limits, enforced in Redis: one GCRA check per provider call.

Celery's ``rate_limit`` is per worker; providers limit per sender and per recipient
across the whole fleet. Each channel type has a limit per channel (sender) and,
where the provider has one, per recipient. One Lua call (``lua/gcra.lua``) checks both
buckets and takes a slot from each only when both allow it; otherwise it answers how long
to wait. A limited job waits (briefly, in the call) or goes back to the queue; it is never
failed for it (docs/delivery.md#fleet-wide-rate-limits).

GCRA (generic cell rate algorithm): each bucket is one timestamp, the "theoretical
arrival time". A call at ``now`` is allowed when ``tat - now <= burst * interval``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import redis
from pydantic import BaseModel, ConfigDict, field_validator

from herald.config import ChannelConfig, ChannelType
from herald.store.keys import rate_key
from herald.store.scripts import GCRA

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)?\s*(ms|s|m|h)\s*$")
_UNIT_MS = {"ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


@dataclass(frozen=True)
class Rate:
    """``count`` calls per ``period_ms``, with bursts of up to ``burst`` calls."""

    count: float
    period_ms: float
    burst: int = 1

    @property
    def interval_ms(self) -> float:
        """Milliseconds between calls at the steady rate."""
        return self.period_ms / self.count

    @classmethod
    def parse(cls, text: str) -> Rate:
        """``"80/s"``, ``"1/6s"``, ``"20/m"``; ``"+N"`` appended sets the burst."""
        spec, _, burst = text.partition("+")
        match = _RATE.match(spec)
        if not match or float(match[1]) <= 0:
            raise ValueError(f"rate {text!r}: write it like '80/s', '1/6s' or '20/m+5'")
        count, amount, unit = float(match[1]), float(match[2] or 1), match[3]
        return cls(count, amount * _UNIT_MS[unit], int(burst) if burst else 1)


class ChannelRates(BaseModel):
    """The limits of one channel type: per channel (sender) and per recipient."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: str | None = None
    recipient: str | None = None

    @field_validator("channel", "recipient")
    @classmethod
    def _parses(cls, value: str | None) -> str | None:
        if value is not None:
            Rate.parse(value)
        return value


#: The providers' documented limits (docs/delivery.md#fleet-wide-rate-limits);
#: ``HERALD_RATE_LIMITS`` overrides them.
DEFAULT_RATE_LIMITS: Mapping[str, ChannelRates] = {
    # 80 msg/s per business number; about 1 msg / 6 s to one user, bursts to 45.
    ChannelType.WHATSAPP: ChannelRates(channel="80/s", recipient="1/6s+45"),
    # ~30 msg/s per bot, 1 msg/s per chat.
    ChannelType.TELEGRAM: ChannelRates(channel="30/s", recipient="1/s"),
    # 300 calls/s per Page.
    ChannelType.MESSENGER: ChannelRates(channel="300/s"),
}


class RateLimiter:
    """Takes a slot for one provider call, or says how long to wait."""

    def __init__(self, client: redis.Redis, limits: Mapping[str, ChannelRates]) -> None:
        self._gcra = GCRA.on(client)
        self._limits = {
            kind: (
                Rate.parse(rates.channel) if rates.channel else None,
                Rate.parse(rates.recipient) if rates.recipient else None,
            )
            for kind, rates in limits.items()
        }

    def acquire(self, channel: ChannelConfig, recipient: str) -> float:
        """Take a slot for a call to ``recipient`` on ``channel``; else seconds to wait."""
        per_channel, per_recipient = self._limits.get(str(channel.type), (None, None))
        buckets: list[str] = []
        limits: list[float] = []
        for scope, rate in (
            (channel.id, per_channel),
            (f"{channel.id}:{recipient}", per_recipient),
        ):
            if rate:
                buckets.append(rate_key(scope))
                # The script's burst is the calls allowed beyond the steady one.
                limits += [rate.interval_ms, rate.burst - 1]
        if not buckets:
            return 0.0
        wait_ms = float(self._gcra(keys={"buckets": buckets}, args={"limits": limits}))
        return wait_ms / 1000.0
