"""Fleet-wide rate limits: GCRA in one Lua call on real Redis, and jobs that wait, not fail."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from pydantic import SecretStr

from herald.config import CustomChannel, TelegramChannel
from herald.store.ratelimit import ChannelRates, Rate, RateLimiter
from herald.testing.sandbox import DEFAULT_WEBHOOK_SECRET
from tests.conftest import Outcomes, make_job, sandbox_requests


def telegram(channel_id: str) -> TelegramChannel:
    return TelegramChannel(id=channel_id, type="telegram", bot_token=SecretStr("t"))


@pytest.mark.parametrize(
    ("text", "interval_ms", "burst"),
    [("80/s", 12.5, 1), ("1/6s", 6000, 1), ("20/m+5", 3000, 5), ("300/s", 1000 / 300, 1)],
)
def test_rate_parsing(text: str, interval_ms: float, burst: int) -> None:
    rate = Rate.parse(text)
    assert rate.interval_ms == pytest.approx(interval_ms)
    assert rate.burst == burst


@pytest.mark.parametrize("text", ["", "fast", "0/s", "10/week", "-1/s"])
def test_bad_rates_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="rate"):
        Rate.parse(text)


def test_per_recipient_limit_allows_one_then_asks_to_wait(rclient: Any) -> None:
    limiter = RateLimiter(rclient, {"telegram": ChannelRates(recipient="1/s")})
    channel = telegram(f"tg-{uuid.uuid4().hex[:6]}")
    assert limiter.acquire(channel, "chat-1") == 0
    wait = limiter.acquire(channel, "chat-1")
    assert 0.5 < wait <= 1.0
    # Another recipient on the same channel is not held back.
    assert limiter.acquire(channel, "chat-2") == 0


def test_burst_then_steady_rate(rclient: Any) -> None:
    limiter = RateLimiter(rclient, {"telegram": ChannelRates(channel="10/s+5")})
    channel = telegram(f"tg-{uuid.uuid4().hex[:6]}")
    granted = [limiter.acquire(channel, f"r{i}") == 0 for i in range(8)]
    assert granted == [True] * 5 + [False] * 3


def test_a_refused_call_takes_no_slot_from_either_bucket(rclient: Any) -> None:
    limiter = RateLimiter(rclient, {"telegram": ChannelRates(channel="100/h+100", recipient="1/m")})
    channel = telegram(f"tg-{uuid.uuid4().hex[:6]}")
    assert limiter.acquire(channel, "busy") == 0
    for _ in range(5):
        assert limiter.acquire(channel, "busy") > 1  # the recipient bucket refuses
    # The channel bucket lost nothing to the refused calls: 99 more fit in its burst.
    assert all(limiter.acquire(channel, f"r{i}") == 0 for i in range(99))
    assert limiter.acquire(channel, "one-too-many") > 0


def test_types_without_limits_are_never_held(rclient: Any) -> None:
    limiter = RateLimiter(rclient, {})
    channel = CustomChannel(
        id="hook", type="custom", url="https://x.test/h", secret=SecretStr(DEFAULT_WEBHOOK_SECRET)
    )
    assert all(limiter.acquire(channel, "r") == 0 for _ in range(50))


@pytest.mark.usefixtures("worker")
def test_limited_jobs_wait_and_are_all_sent(
    celery_app: Any, settings: Any, sandbox: Any, outcomes: Outcomes
) -> None:
    # The test settings limit the webhook to 2 calls/s per recipient.
    recipient = f"crm-{uuid.uuid4().hex[:6]}"
    jobs = [
        make_job([{"channel_id": "hook", "identifier": recipient}], channel="hook")
        for _ in range(5)
    ]
    started = time.monotonic()
    for job in jobs:
        celery_app.send_task("herald.send_message", kwargs={"job": job}, queue=settings.queue)
    events = [outcomes.wait(job["job_id"], timeout=30) for job in jobs]
    assert [e.event for e in events] == ["message.sent"] * 5
    assert [e.data.attempts for e in events] == [1] * 5  # waiting is not an attempt
    # 5 calls at 2/s need at least 2 s after the first.
    assert time.monotonic() - started >= 2.0
    assert len(sandbox_requests(sandbox, "custom", data__recipient=recipient)) == 5
