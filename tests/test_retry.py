"""The one retry policy: full-jitter exponential backoff, capped, honouring provider hints."""

from __future__ import annotations

import pytest

from herald.contract.errors import ProviderUnavailable, RateLimited
from herald.core.retry import RetryPolicy

POLICY = RetryPolicy(
    max_attempts=8,
    max_age_s=3600,
    backoff_s=1,
    backoff_max_s=300,
    inline_max_s=2,
    visibility_timeout_s=1800,
)


@pytest.mark.parametrize(
    ("attempts", "ceiling"), [(1, 1), (2, 2), (3, 4), (9, 256), (10, 300), (30, 300)]
)
def test_waits_are_full_jitter_under_an_exponential_cap(attempts: int, ceiling: float) -> None:
    error = ProviderUnavailable("x")
    waits = [POLICY.wait(attempts, error) for _ in range(2000)]
    assert all(0 <= w <= ceiling for w in waits)
    assert min(waits) < ceiling * 0.05 and max(waits) > ceiling * 0.95  # the full range
    assert POLICY.ceiling(attempts, error) == ceiling


def test_a_provider_hint_is_honoured_even_above_the_cap() -> None:
    hinted = RateLimited("slow down", retry_after=900)
    assert all(POLICY.wait(1, hinted) == 900 for _ in range(100))
    assert POLICY.ceiling(1, hinted) == 900
    assert not POLICY.inline(1, hinted)


def test_short_waits_stay_in_the_call_long_ones_go_to_the_queue() -> None:
    assert POLICY.inline(1, ProviderUnavailable("x"))  # ceiling 1 s
    assert POLICY.inline(2, ProviderUnavailable("x"))  # ceiling 2 s
    assert not POLICY.inline(3, ProviderUnavailable("x"))  # ceiling 4 s
    assert not POLICY.inline(1, RateLimited("x", retry_after=3))


@pytest.mark.parametrize(
    ("attempts", "age", "next_wait", "exhausted"),
    [
        (7, 0, 0, False),
        (8, 0, 0, True),
        (1, 3599, 0, False),
        (1, 3500, 200, True),
        (1, 3601, 0, True),
    ],
)
def test_exhaustion_by_attempts_or_age(
    attempts: int, age: float, next_wait: float, exhausted: bool
) -> None:
    assert POLICY.exhausted(attempts, age, next_wait) is exhausted


def test_queue_countdowns_stay_below_the_visibility_timeout() -> None:
    assert POLICY.queue_delay(10) == 10
    assert POLICY.queue_delay(5000) == 900
    assert POLICY.queue_delay(-1) == 0
