"""In-flight lists: a message taken off a Redis queue is never only in a worker's memory.

kombu's Redis transport pops a message (BRPOP) and only later records it as unacked; in
between (and for as long as kombu leaves a popped reply unread while every slot is busy)
the message exists only in the worker: a worker killed then loses it. Herald's transport
(:mod:`herald.worker.transport`) instead moves each message atomically (BLMOVE) from its
queue to an in-flight list of its own consumer, and drops it from there once kombu has
recorded it as unacked. A consumer keeps a heartbeat key alive while it runs; the sweeper
puts the messages of a dead consumer's list back at the head of their queue
(docs/delivery.md#the-sweeper).
"""

from __future__ import annotations

import redis

from herald.store.decode import text
from herald.store.keys import INFLIGHT_KEY, INFLIGHT_SET, alive_key

#: Seconds a consumer's heartbeat lasts without renewal.
ALIVE_S = 60
#: The key prefix of in-flight lists (their queue follows it).
PREFIX = INFLIGHT_KEY.split("{", 1)[0]


def queue_of(key: str) -> str:
    """The queue of an in-flight list key ``herald:inflight:<queue>:<owner>``."""
    return key[len(PREFIX) :].rsplit(":", 1)[0]


def recover(client: redis.Redis) -> int:
    """Put the messages of dead consumers' in-flight lists back on their queues; how many."""
    moved = 0
    for raw in client.smembers(INFLIGHT_SET):
        key = text(raw)
        if client.exists(alive_key(key)):
            continue
        queue = queue_of(key)
        # The right end of a queue is its head (producers LPUSH, consumers pop the right).
        while client.lmove(key, queue, "LEFT", "RIGHT") is not None:  # the oldest ends first
            moved += 1
        client.srem(INFLIGHT_SET, key)
    return moved
