"""The coalescer: calls made at once by many threads share round trips; each gets its own
result or its own error, and a caller alone is not kept waiting."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from herald.store.coalesce import Coalescer


class Slow:
    """A "round trip" of 20 ms that doubles each number and refuses negative ones."""

    def __init__(self) -> None:
        self.groups: list[list[int]] = []

    def __call__(self, items: Sequence[int]) -> list[int | BaseException]:
        self.groups.append(list(items))
        time.sleep(0.02)
        return [ValueError(f"negative: {i}") if i < 0 else 2 * i for i in items]


def test_a_caller_alone_runs_at_once_in_its_own_round_trip() -> None:
    run = Slow()
    coalesce = Coalescer(run)
    assert [coalesce(1), coalesce(2)] == [2, 4]
    assert run.groups == [[1], [2]]


def test_calls_made_at_once_share_round_trips_and_keep_their_own_results() -> None:
    run = Slow()
    coalesce = Coalescer(run, max_calls=50)
    results: dict[int, int | str] = {}
    start = threading.Barrier(200)

    def call(n: int) -> None:
        start.wait()
        try:
            results[n] = coalesce(n if n % 7 else -n)
        except ValueError as exc:
            results[n] = str(exc)

    threads = [threading.Thread(target=call, args=(n,)) for n in range(1, 201)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert results == {n: (2 * n if n % 7 else f"negative: {-n}") for n in range(1, 201)}
    assert sorted(i for group in run.groups for i in group) == sorted(
        n if n % 7 else -n for n in range(1, 201)
    )
    assert max(len(g) for g in run.groups) <= 50
    assert len(run.groups) < 40  # 200 calls, far fewer round trips
    assert (coalesce.calls, coalesce.trips) == (200, len(run.groups))


def test_a_failed_round_trip_fails_each_of_its_calls_and_the_next_one_runs() -> None:
    def broken(items: Sequence[int]) -> list[int | BaseException]:
        raise ConnectionError("redis went away")

    coalesce: Coalescer[int, int] = Coalescer(broken)
    with pytest.raises(ConnectionError):
        coalesce(1)
    with pytest.raises(ConnectionError):
        coalesce(2)
