"""Overall deadlines for network calls: httpx's timeouts are per step, so a peer that sends
a byte now and then keeps a request alive for ever. A :class:`Deadline` is the moment a
call must end by; a :class:`DeadlineStream` (and :class:`DeadlineBackend`) cut every
connect, TLS handshake, read and write of an httpcore connection to the time left.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterable
from typing import Any

import httpcore

#: A write is split so the deadline is checked again at least this often (in bytes): a
#: peer reading slowly cannot stretch one long write.
WRITE_CHUNK = 64 * 1024


class Deadline:
    """The moment, on the monotonic clock, by which a call must end (None: no deadline)."""

    def __init__(self, seconds: float | None = None) -> None:
        self.seconds = seconds
        self.at: float | None = None
        #: Whether the deadline, not the per-step timeout, bounded the last step: a timeout
        #: then is the deadline's.
        self.binding = False
        if seconds is not None:
            self.start(seconds)

    def start(self, seconds: float | None) -> None:
        """Run ``seconds`` from now (None: no deadline)."""
        self.seconds = seconds
        self.at = None if seconds is None else time.monotonic() + seconds
        self.binding = False

    def left(self) -> float | None:
        """Seconds left (negative once passed); None without a deadline."""
        return None if self.at is None else self.at - time.monotonic()

    def passed(self) -> bool:
        """Whether the deadline has passed (never, without one)."""
        left = self.left()
        return left is not None and left <= 0

    def cap(self, timeout: float | None, late: type[Exception]) -> float | None:
        """``timeout`` cut to the time left; raises ``late`` once the deadline has passed."""
        left = self.left()
        self.binding = left is not None and (timeout is None or left <= timeout)
        if left is None or not self.binding:
            return timeout
        if left <= 0:
            raise late("the overall deadline passed")
        return left


class DeadlineStream(httpcore.NetworkStream):
    """A connection whose every wait ends by the deadline."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: Deadline) -> None:
        self._inner = inner
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._deadline.cap(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        for start in range(0, len(buffer), WRITE_CHUNK):
            chunk = buffer[start : start + WRITE_CHUNK]
            self._inner.write(chunk, self._deadline.cap(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        capped = self._deadline.cap(timeout, httpcore.ConnectTimeout)
        return DeadlineStream(
            self._inner.start_tls(ssl_context, server_hostname, capped), self._deadline
        )

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's socket backend, its connections held to a deadline."""

    def __init__(self, deadline: Deadline) -> None:
        self._inner = httpcore.SyncBackend()
        self.deadline = deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        capped = self.deadline.cap(timeout, httpcore.ConnectTimeout)
        stream = self._inner.connect_tcp(host, port, capped, local_address, socket_options)
        return DeadlineStream(stream, self.deadline)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)
