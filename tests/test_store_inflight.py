"""In-flight lists: a dead consumer's messages go back at the head of their queue."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
import redis

from herald.store import inflight
from herald.store.inflight import queue_of
from herald.store.keys import INFLIGHT_SET, alive_key, inflight_key


def test_a_dead_consumers_messages_go_back_first_in_line_and_a_live_ones_stay(
    rclient: Any,
) -> None:
    queue = f"ts-queue-{uuid.uuid4().hex[:8]}"
    dead, live = inflight_key(queue, "dead-1"), inflight_key(queue, "live-1")
    try:
        rclient.lpush(queue, "waiting")  # a message still queued (the head is the right end)
        rclient.lpush(dead, "taken-first", "taken-second")  # BLMOVE pushes on the left
        rclient.lpush(live, "in-hand")
        rclient.set(alive_key(live), "1", ex=60)
        rclient.sadd(INFLIGHT_SET, dead, live)

        assert inflight.recover(rclient) == 2

        # Next out of the queue: the dead consumer's messages, oldest first, then the rest.
        assert [rclient.rpop(queue) for _ in range(3)] == ["taken-first", "taken-second", "waiting"]
        assert rclient.lrange(live, 0, -1) == ["in-hand"]
        assert not rclient.sismember(INFLIGHT_SET, dead)
        assert rclient.sismember(INFLIGHT_SET, live)
    finally:
        rclient.srem(INFLIGHT_SET, dead, live)
        rclient.delete(queue, dead, live, alive_key(live))


def test_the_queue_of_a_list_is_read_from_its_key() -> None:
    assert inflight.queue_of(inflight_key("herald.bulk", "abc")) == "herald.bulk"
    assert inflight.queue_of(inflight_key("herald-test-1", "x")) == "herald-test-1"


@pytest.mark.usefixtures("worker")
def test_a_consumer_of_two_queues_keeps_both_its_in_flight_lists_alive(
    rclient: redis.Redis[Any], settings: Any
) -> None:
    # The suite's worker consumes the single jobs' queue and the bulk queue: each of its
    # in-flight lists has a live heartbeat, or the sweeper would take it for a dead one's.
    time.sleep(2)  # a few takes: each renews what has lapsed
    live = {
        queue_of(key) for key in rclient.smembers(INFLIGHT_SET) if rclient.exists(alive_key(key))
    }
    assert {settings.queue, settings.bulk} <= live
