"""kombu's Redis transport, with every message checked before Celery reads it.

kombu takes a message off the queue (BRPOP) and hands it to Celery; a message that is not
a well-formed protocol-2 envelope raises in the worker's consumer, which ends the worker
(and, once restored, the next one). Here each message is first checked
(:func:`herald.worker.envelope.check`); one that cannot be read is dropped from the queue
(it was popped, and is held by no worker), kept in the dead-letter stream with the reason,
and logged in one line; the worker goes on (docs/contract.md#the-dead-letter-stream).

A consumer takes each message with BLMOVE (one queue) or the take script (several: from
the first that holds one, in the order of ``herald_queue_order``, so single jobs go before
batches) into an in-flight list of its own, and drops it from there once kombu has
recorded it as unacked, so a worker killed in between loses nothing: the sweeper puts a
dead consumer's list back on the queue (:mod:`herald.store.inflight`). When none of
several queues holds a message, the consumer waits on the first with BLMOVE for up to
kombu's ``brpop_timeout`` (1 s), then looks at them all again: a batch enqueued on an idle
worker waits up to that long.

Celery uses it when ``broker_transport`` names it (Herald's app does for a Redis broker).
Its options come through ``broker_transport_options``: ``herald_state_url`` (the Redis that
holds the dead-letter stream), ``herald_envelope_bytes`` and ``herald_body_bytes``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import uuid
from queue import Empty
from typing import Any

import redis
from kombu.transport import redis as kombu_redis
from kombu.transport import virtual as kombu_virtual
from kombu.utils import json as kombu_json

from herald.contract.names import DEAD_STREAM
from herald.store.inflight import ALIVE_S
from herald.store.keys import INFLIGHT_SET, alive_key, inflight_key
from herald.store.scripts import TAKE
from herald.worker.envelope import Limits, Refused, check

log = logging.getLogger("herald.worker")

#: The take script's SHA1, as EVALSHA names it.
TAKE_SHA = hashlib.sha1(TAKE.source.encode("utf-8")).hexdigest()
#: How much of a refused message its dead-letter entry keeps, at most.
RAW_KEPT = 256 * 1024


class QoS(kombu_redis.QoS):
    """kombu's unacked record of a delivered message, with the message dropped from the
    consumer's in-flight list in the same round trip."""

    def append(self, message: Any, delivery_tag: str) -> None:
        taken = self.channel._taken
        if taken is None:
            super().append(message, delivery_tag)  # type: ignore[no-untyped-call]
            return
        self.channel._taken = None
        inflight, item = taken
        delivery = message.delivery_info
        raw = [message._raw, delivery["exchange"], delivery["routing_key"]]
        record = kombu_json.dumps(raw)  # type: ignore[no-untyped-call]
        # kombu 5.7's QoS.append, with the LREM beside its two writes.
        with self.pipe_or_acquire() as pipe:
            pipe.zadd(self.unacked_index_key, {delivery_tag: time.time()}).hset(
                self.unacked_key, delivery_tag, record
            ).lrem(inflight, 1, item).execute()
            kombu_virtual.QoS.append(self, message, delivery_tag)  # type: ignore[no-untyped-call]


class Channel(kombu_redis.Channel):
    """A Redis channel whose consumer checks each message before delivering it."""

    QoS = QoS

    from_transport_options = (  # type: ignore[assignment]
        *kombu_redis.Channel.from_transport_options,
        "herald_state_url",
        "herald_envelope_bytes",
        "herald_body_bytes",
        "herald_drop_set",
        "herald_queue_order",
    )
    herald_state_url: str | None = None
    herald_envelope_bytes = 2 * 1024 * 1024
    herald_body_bytes = 1024 * 1024
    #: Tests only (HERALD_TEST_DROP_SET): task ids whose next message is dropped here.
    herald_drop_set: str | None = None
    #: The consumed queues in the order they are taken from (single jobs, then batches).
    herald_queue_order: list[str] | None = None

    _dead_client: redis.Redis | None = None
    _dead_lock = threading.Lock()
    #: The command whose reply is read next, the queues it takes from, whether the last
    #: scan of several queues found them all empty; and this consumer's own id.
    _reading = "BRPOP"
    _taking: list[str] = []  # noqa: RUF012 (replaced, never changed in place)
    _scanned = False
    #: The message being delivered and its in-flight list, for QoS.append to drop it.
    _taken: tuple[str, Any] | None = None
    _owner: str | None = None
    _dropped = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        self._herald_lists: set[str] = set()
        #: When each in-flight list's heartbeat was last renewed (one per consumed queue).
        self._alive_at: dict[str, float] = {}

    def _brpop_start(self, timeout: float | None = None) -> None:
        queues = self._ordered(self.active_queues)
        if not queues or self.global_keyprefix or any(_is_control(q) for q in queues):
            # kombu's own messages (control replies) are read as kombu reads them.
            self._reading = "BRPOP"
            super()._brpop_start(timeout)  # type: ignore[no-untyped-call]
            return
        self._in_poll = self.client.connection
        self._brpop_sent_at = time.monotonic()  # type: ignore[assignment]
        for queue in queues:
            self._keep_alive(self._inflight(queue))
        if len(queues) > 1 and not self._scanned:
            # Several queues: take from the first that holds a message, in their order.
            self._reading, self._taking = "EVALSHA", queues
            lists = [
                name
                for queue in queues
                for pri in self.priority_steps
                for name in (self._q_for_pri(queue, pri), self._inflight(queue))  # type: ignore[no-untyped-call]
            ]
            self.client.connection.send_command(
                "EVALSHA", TAKE_SHA, len(lists), *lists, len(lists) // 2
            )
            return
        # One queue, or none of several held a message a moment ago: wait on the first.
        self._reading, self._taking, self._scanned = "BLMOVE", queues[:1], False
        source = self._q_for_pri(queues[0], 0)  # type: ignore[no-untyped-call]
        wait = timeout or self.brpop_timeout
        self.client.connection.send_command(
            "BLMOVE", source, self._inflight(queues[0]), "RIGHT", "LEFT", wait
        )

    def _ordered(self, queues: Any) -> list[str]:
        """The consumed queues in the order they are taken from (herald_queue_order)."""
        order = list(self.herald_queue_order or ())
        rank = {name: i for i, name in enumerate(order)}
        return sorted(queues, key=lambda q: (rank.get(q, len(order)), q))

    def _brpop_read(self, **options: Any) -> bool:
        # kombu 5.7's Channel._brpop_read, with each message checked before it is delivered,
        # and taken (BLMOVE, or the take script for several queues) into this consumer's
        # in-flight list, dropped from there once kombu has recorded it as unacked.
        try:
            try:
                reply = self.client.parse_response(self.client.connection, self._reading, **options)
            except redis.exceptions.NoScriptError:
                # The first call on this Redis (or after SCRIPT FLUSH): load it, then go on.
                self.client.script_load(TAKE.source)
                raise Empty() from None
            except self.connection_errors:
                # if there's a ConnectionError, disconnect so the next
                # iteration will reconnect automatically.
                self.client.connection.disconnect()
                raise
            if self._reading == "BRPOP":
                self._take_popped(reply)
            elif self._reading == "BLMOVE":
                self._take_moved(reply, self._taking[0])
            else:
                self._take_scanned(reply)
            return True
        finally:
            self._in_poll = None  # type: ignore[assignment]
            flush = getattr(self, "_flush_brpop_reauth", None)
            if flush is not None:
                flush()

    def _take_scanned(self, reply: Any) -> None:
        if not reply:
            self._scanned = True  # every queue was empty: wait on the first one next
            raise Empty()
        pair, item = reply
        queue = self._taking[(int(pair) - 1) // len(self.priority_steps)]
        self._deliver_taken(item, queue)

    def _take_popped(self, reply: Any) -> None:
        if not reply:
            raise Empty()
        dest, item = reply
        dest = (dest.decode() if isinstance(dest, bytes) else dest).rsplit(self.sep, 1)[0]
        self._queue_cycle.rotate(dest)
        message = self._admit(item, dest)
        if message is not None:
            self.connection._deliver(message, dest)

    def _take_moved(self, item: Any, queue: str) -> None:
        if item is None:
            item = self._take_prioritised(queue, self._inflight(queue))
            if item is None:
                raise Empty()
        self._deliver_taken(item, queue)

    def _deliver_taken(self, item: Any, queue: str) -> None:
        """Hand a message moved into the in-flight list to kombu, then drop it from there."""
        inflight = self._inflight(queue)
        message = self._admit(item, queue)
        if message is not None:
            self._taken = (inflight, item)
            # Now in kombu's unacked record, and (QoS.append) out of the in-flight list.
            self.connection._deliver(message, queue)
            if self._taken is None:
                return
            self._taken = None  # not recorded as unacked (a consumer without acks)
        elif self._dropped:
            # The test hook: as if this worker died now, the message left in a list whose
            # consumer is gone.
            dead = inflight_key(queue, f"dropped-{uuid.uuid4().hex}")
            self.client.rpush(dead, item)
            self.client.sadd(INFLIGHT_SET, dead)
        self.client.lrem(inflight, 1, item)

    def _take_prioritised(self, queue: str, inflight: str) -> Any:
        """A message of the queue's priority lists (there is none in the main one)."""
        for pri in self.priority_steps[1:]:
            found = self.client.lmove(
                self._q_for_pri(queue, pri),  # type: ignore[no-untyped-call]
                inflight,
                "RIGHT",
                "LEFT",
            )
            if found is not None:
                return found
        return None

    def _inflight(self, queue: str) -> str:
        """This consumer's in-flight list of ``queue`` (registered for the sweeper)."""
        if self._owner is None:
            self._owner = uuid.uuid4().hex
        key = inflight_key(queue, self._owner)
        if key not in self._herald_lists:
            self.client.sadd(INFLIGHT_SET, key)
            self._herald_lists.add(key)
        return key

    def _keep_alive(self, inflight: str) -> None:
        now = time.monotonic()
        if now - self._alive_at.get(inflight, 0.0) > ALIVE_S / 6:
            self.client.set(alive_key(inflight), "1", ex=ALIVE_S)
            self._alive_at[inflight] = now

    def _get(self, queue: str, timeout: Any = None) -> dict[str, Any]:
        # kombu's Channel._get (RPOP, for polling consumers), skipping refused messages.
        with self.conn_or_acquire() as client:
            for pri in self.priority_steps:
                while item := client.rpop(self._q_for_pri(queue, pri)):  # type: ignore[no-untyped-call]
                    message = self._admit(item, queue)
                    if message is not None:
                        self._maybe_update_queues_expire(client, queue)  # type: ignore[no-untyped-call]
                        return message
            self._maybe_update_queues_expire(client, queue)  # type: ignore[no-untyped-call]
            raise Empty()

    def _admit(self, item: bytes | str, queue: str) -> dict[str, Any] | None:
        """The envelope of ``item``, or None after keeping a refused one as a dead letter."""
        if _is_control(queue):
            try:
                found = json.loads(item)
            except ValueError:
                found = None
            if isinstance(found, dict):
                return found
            self._dead_letter(item, Refused("a control reply that is not a JSON object"), queue)
            return None
        limits = Limits(self.herald_envelope_bytes, self.herald_body_bytes)
        try:
            envelope = check(item, limits)
        except Refused as refused:
            self._dead_letter(item, refused, queue)
            return None
        self._dropped = bool(
            self.herald_drop_set
            and self.client.srem(self.herald_drop_set, envelope["headers"]["id"])
        )
        if self._dropped:
            # As a worker killed between taking the message and kombu's unacked record.
            log.warning("herald: test hook dropped message %s", envelope["headers"]["id"])
            return None
        return envelope

    def _dead_letter(self, item: bytes | str, refused: Refused, queue: str) -> None:
        raw = item if isinstance(item, str) else item[:RAW_KEPT].decode("utf-8", "replace")
        fields = {"task": refused.task, "raw": raw[:RAW_KEPT], "reason": refused.reason}
        log.error(
            "herald: refused a message on queue %r that cannot be read (%s); kept in %s",
            queue,
            refused.reason,
            DEAD_STREAM,
        )
        try:
            self._dead_letters().xadd(DEAD_STREAM, fields)  # type: ignore[arg-type]
        except redis.RedisError:
            # The message is already off the queue: say so loudly rather than stall.
            log.exception("herald: could not keep the refused message in %s", DEAD_STREAM)

    def _dead_letters(self) -> redis.Redis:
        """The client of the Redis holding the dead-letter stream (the broker's by default)."""
        with self._dead_lock:
            if self._dead_client is None:
                url = self.herald_state_url
                self._dead_client = (
                    redis.Redis.from_url(url, socket_timeout=10) if url else self.client
                )
            return self._dead_client


def _is_control(queue: str) -> bool:
    """Whether ``queue`` carries Celery's control replies (``<uuid>.reply.celery.pidbox``),
    not tasks: those are kombu's own messages, left as kombu reads them."""
    return queue.endswith(".pidbox")


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with :class:`Channel`."""

    Channel = Channel
