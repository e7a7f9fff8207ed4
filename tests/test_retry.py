"""The one retry policy: full-jitter exponential backoff, capped, honouring provider hints,
and the one decision every "try again?" of the send path asks."""

from __future__ import annotations

import pytest

from herald.config import InDoubtPolicy
from herald.contract.errors import AuthFailed, ProviderUnavailable, RateLimited, Throttled
from herald.core.retry import (
    MAX_SLOT_WAITS,
    NOT_RESENT,
    GiveUp,
    Requeue,
    RetryNow,
    RetryPolicy,
)

POLICY = RetryPolicy(
    max_attempts=8,
    max_age_s=3600,
    backoff_s=1,
    backoff_max_s=300,
    inline_max_s=2,
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


# -- the one decision -------------------------------------------------------------------

AT_MOST_ONCE = RetryPolicy(inline_max_s=2, in_doubt=InDoubtPolicy.AT_MOST_ONCE)


def test_a_permanent_error_gives_up_at_once() -> None:
    error = AuthFailed("bad token")
    assert POLICY.decide(error, attempts=1) == GiveUp(error)


def test_a_short_transient_wait_is_spent_in_the_call() -> None:
    decision = POLICY.decide(ProviderUnavailable("x"), attempts=1)
    assert isinstance(decision, RetryNow) and 0 <= decision.wait <= 1
    assert not decision.resends_in_doubt


def test_a_long_wait_is_spent_in_the_jobs_record_not_clamped() -> None:
    decision = POLICY.decide(RateLimited("slow down", retry_after=1200), attempts=1)
    assert isinstance(decision, Requeue) and decision.after == 1200
    assert decision.reason == "slow down"


def test_spent_attempts_or_age_give_up_with_the_transient_error() -> None:
    error = ProviderUnavailable("x")
    assert POLICY.decide(error, attempts=8) == GiveUp(error)
    assert POLICY.decide(error, attempts=1, age_s=3600.5) == GiveUp(error)


def test_an_in_doubt_error_is_resent_where_allowed_and_counted_as_such() -> None:
    error = ProviderUnavailable("no answer", in_doubt=True)
    decision = POLICY.decide(error, attempts=1)
    assert isinstance(decision, RetryNow) and decision.resends_in_doubt
    deduped = AT_MOST_ONCE.decide(error, attempts=1, dedupes=True)
    assert isinstance(deduped, RetryNow) and deduped.resends_in_doubt


def test_an_in_doubt_error_at_most_once_fails_and_says_why_without_editing_the_error() -> None:
    error = ProviderUnavailable("no answer", in_doubt=True)
    decision = AT_MOST_ONCE.decide(error, attempts=1)
    assert isinstance(decision, GiveUp)
    assert decision.error.message == f"in doubt, not resent ({NOT_RESENT}): no answer"
    assert decision.error.code == "provider_unavailable" and decision.error.retryable
    assert error.message == "no answer"  # the raised error is left as it was


def test_the_fleet_rate_limit_waits_and_never_gives_up() -> None:
    assert POLICY.decide(Throttled(0.5), attempts=8, age_s=1e9) == RetryNow(0.5)
    long = POLICY.decide(Throttled(30.0), attempts=8, age_s=1e9)
    assert isinstance(long, Requeue) and long.after == 30.0
    assert isinstance(POLICY.decide(Throttled(0.5, waits=MAX_SLOT_WAITS)), Requeue)
