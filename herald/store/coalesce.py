"""Calls made at once by many threads, sent to Redis together: one round trip for all.

A worker runs many sends at once (a threads pool of 100, the jobs of a batch); each claims
its job and records its outcome with a Redis call. :class:`Coalescer` lets the first caller
run what is waiting in one pipeline while the others wait; whoever arrives during that
round trip waits for the next one, which the first of them leads. A caller alone runs its
call at once, so nothing waits on a timer, and under load the round trips per job fall
with the number of calls in flight (docs/performance.md#a-small-cost-per-job).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: The most calls one round trip carries.
MAX_CALLS = 256


class _Slot(Generic[T, R]):
    __slots__ = ("done", "error", "item", "lead", "result")

    def __init__(self, item: T) -> None:
        self.item = item
        self.done = threading.Event()
        self.lead = False
        self.result: R | None = None
        self.error: BaseException | None = None


class Coalescer(Generic[T, R]):
    """Runs ``run`` over the items waiting, from many threads; each caller gets its own
    result, or its own exception (``run`` returns one of either per item, in order)."""

    def __init__(
        self, run: Callable[[Sequence[T]], Sequence[R | BaseException]], max_calls: int = MAX_CALLS
    ) -> None:
        self._run = run
        self._max = max_calls
        self._lock = threading.Lock()
        self._waiting: list[_Slot[T, R]] = []
        self._running = False
        #: Round trips made and calls carried so far: how well calls are shared.
        self.trips = 0
        self.calls = 0

    def __call__(self, item: T) -> R:
        slot: _Slot[T, R] = _Slot(item)
        with self._lock:
            self._waiting.append(slot)
            lead = not self._running
            self._running = True
        if not lead:
            slot.done.wait()
            if slot.lead:  # the round trip before ended: this caller leads the next
                slot.done.clear()
                lead = True
        if lead:
            self._flush()
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]

    def _flush(self) -> None:
        """Run what waits (this caller's item first), hand the lead on, wake the callers."""
        with self._lock:
            group, self._waiting = self._waiting[: self._max], self._waiting[self._max :]
        try:
            results: Sequence[R | BaseException] = self._run([s.item for s in group])
            if len(results) != len(group):
                raise RuntimeError(f"{len(results)} results for {len(group)} calls")
        except BaseException as exc:  # every caller of this round trip gets it
            results = [exc] * len(group)
        with self._lock:
            self.trips += 1
            self.calls += len(group)
            if self._waiting:
                following = self._waiting[0]
                following.lead = True
                following.done.set()
            else:
                self._running = False
        for slot, result in zip(group, results, strict=True):
            if isinstance(result, BaseException):
                slot.error = result
            else:
                slot.result = result
            slot.lead = False
            slot.done.set()
