"""``herald events --follow``: new outcome events as they come, for as long as it runs.

Through quiet hours: each read blocks for less than the client's socket timeout, so
silence is never an error. Through Redis restarts and failovers: a lost connection is
retried with capped, jittered backoff, said once on stderr, and reading goes on after the
last event printed (with a consumer group: its own unacknowledged events first).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from functools import partial
from typing import NoReturn, TypeVar

import redis

from herald.cli.connect import Endpoint, lost
from herald.cli.output import note
from herald.store.stream import ConsumerGroup, Entry, block_ms_for, read_after

T = TypeVar("T")
Show = Callable[[list[Entry]], None]

#: First and longest wait between reconnection attempts, in seconds.
BACKOFF_FIRST_S = 0.5
BACKOFF_CAP_S = 10.0


class Reconnecting:
    """Runs Redis calls again after connection errors, waiting longer each time."""

    def __init__(self, endpoint: Endpoint, *, on_back: Callable[[], None] | None = None) -> None:
        self.endpoint = endpoint
        self.on_back = on_back

    def run(self, call: Callable[[], T]) -> T:
        """``call()``, retried until Redis answers; an outage is noted once, and its end."""
        delay, down = BACKOFF_FIRST_S, False
        while True:
            try:
                result = call()
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                if not down:
                    note(f"{lost(self.endpoint, exc)}; reconnecting")
                    down = True
                time.sleep(random.uniform(delay / 2, delay))  # jitter: followers spread out
                delay = min(BACKOFF_CAP_S, delay * 2)
                continue
            if down:
                note(f"reconnected to {self.endpoint.describe()}")
                if self.on_back is not None:
                    self.on_back()
            return result


def follow_stream(
    client: redis.Redis, stream: str, after: str, show: Show, endpoint: Endpoint
) -> NoReturn:
    """Print every event written after the id ``after``, forever."""
    retry = Reconnecting(endpoint)
    block = block_ms_for(client)
    while True:
        fresh = retry.run(partial(read_after, client, stream, after, block_ms=block))
        if fresh:
            show(fresh)
            after = fresh[-1][0]


def follow_group(group: ConsumerGroup, show: Show, endpoint: Endpoint) -> NoReturn:
    """Print the group's events meant for this consumer, acking each batch once printed."""
    # After an outage a reply may have been lost on the way: read our own pending first.
    retry = Reconnecting(endpoint, on_back=group.recover)
    retry.run(group.create)
    while True:
        entries = retry.run(group.read)
        if entries:
            show(entries)
            retry.run(partial(group.ack, [entry_id for entry_id, _ in entries]))
