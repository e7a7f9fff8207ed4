"""kombu's Redis transport, with every message checked before Celery reads it.

kombu takes a message off the queue (BRPOP) and hands it to Celery; a message that is not
a well-formed protocol-2 envelope raises in the worker's consumer, which ends the worker
(and, once restored, the next one). Here each message is first checked
(:func:`herald.worker.envelope.check`); one that cannot be read is dropped from the queue
(it was popped, and is held by no worker), kept in the dead-letter stream with the reason,
and logged in one line; the worker goes on (docs/contract.md#the-dead-letter-stream).

Celery uses it when ``broker_transport`` names it (Herald's app does for a Redis broker).
Its options come through ``broker_transport_options``: ``herald_state_url`` (the Redis that
holds the dead-letter stream), ``herald_envelope_bytes`` and ``herald_body_bytes``.
"""

from __future__ import annotations

import logging
import threading
from queue import Empty
from typing import Any

import redis
from kombu.transport import redis as kombu_redis

from herald.contract.names import DEAD_STREAM
from herald.worker.envelope import Limits, Refused, check

log = logging.getLogger("herald.worker")

#: How much of a refused message its dead-letter entry keeps, at most.
RAW_KEPT = 256 * 1024


class Channel(kombu_redis.Channel):
    """A Redis channel whose consumer checks each message before delivering it."""

    from_transport_options = (  # type: ignore[assignment]
        *kombu_redis.Channel.from_transport_options,
        "herald_state_url",
        "herald_envelope_bytes",
        "herald_body_bytes",
        "herald_drop_set",
    )
    herald_state_url: str | None = None
    herald_envelope_bytes = 2 * 1024 * 1024
    herald_body_bytes = 1024 * 1024
    #: Tests only (HERALD_TEST_DROP_SET): task ids whose next message is dropped here.
    herald_drop_set: str | None = None

    _dead_client: redis.Redis | None = None
    _dead_lock = threading.Lock()

    def _brpop_read(self, **options: Any) -> bool:
        # kombu 5.7's Channel._brpop_read, with the message checked before it is delivered.
        try:
            try:
                dest__item = self.client.parse_response(self.client.connection, "BRPOP", **options)
            except self.connection_errors:
                # if there's a ConnectionError, disconnect so the next
                # iteration will reconnect automatically.
                self.client.connection.disconnect()
                raise
            if not dest__item:
                raise Empty()
            dest, item = dest__item
            dest = (dest.decode() if isinstance(dest, bytes) else dest).rsplit(self.sep, 1)[0]
            self._queue_cycle.rotate(dest)
            message = self._admit(item, dest)
            if message is not None:
                self.connection._deliver(message, dest)
            return True
        finally:
            self._in_poll = None  # type: ignore[assignment]
            flush = getattr(self, "_flush_brpop_reauth", None)
            if flush is not None:
                flush()

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
        limits = Limits(self.herald_envelope_bytes, self.herald_body_bytes)
        try:
            envelope = check(item, limits)
        except Refused as refused:
            self._dead_letter(item, refused, queue)
            return None
        if self.herald_drop_set and self.client.srem(
            self.herald_drop_set, envelope["headers"]["id"]
        ):
            # A worker killed between BRPOP and kombu's unacked record loses the message.
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


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with :class:`Channel`."""

    Channel = Channel
