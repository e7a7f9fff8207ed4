"""Pooled httpx clients, the one place httpx failures become Herald errors, and JSON bodies.

One ``httpx.Client`` shared by hundreds of concurrent sends collapses (httpcore's
pool does O(N^2) work per request), and building one costs ~17 ms of CPU. So each
channel keeps a free list of clients, built on first need and reused: a send borrows
a client for its request and puts it back, so no client is shared by concurrent
requests. Every client shares one SSL context, the expensive part. Safe under threads
and gevent (``queue.LifoQueue`` and ``threading.Lock`` are patched by gevent).
"""

from __future__ import annotations

import json
import queue
import ssl
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx

from herald.contract.errors import ProviderUnavailable

#: A client serves one send at a time, so it needs few connections.
CONNECTIONS_PER_CLIENT = 2


class ClientPool:
    """A free list of at most ``max_clients`` httpx clients for one channel."""

    def __init__(
        self,
        *,
        connect_timeout: float = 5.0,
        timeout: float = 15.0,
        max_clients: int = 64,
        auth: httpx.Auth | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        # Loading the CA bundle takes ~40 ms, and a context is shareable: give every pool of
        # a process the same one (build_adapters does).
        self._ssl = ssl_context or httpx.create_ssl_context()
        self._timeout = httpx.Timeout(timeout, connect=connect_timeout, pool=connect_timeout)
        #: How long a send waits for a free client when all are in use.
        self._wait = connect_timeout
        self._limits = httpx.Limits(
            max_connections=CONNECTIONS_PER_CLIENT,
            max_keepalive_connections=CONNECTIONS_PER_CLIENT,
        )
        self._auth = auth
        self._free: queue.LifoQueue[httpx.Client] = queue.LifoQueue()
        self._all: list[httpx.Client] = []
        #: Clients built or being built; reserved under the lock, so never over the maximum.
        self._count = 0
        self._lock = threading.Lock()
        self._max = max_clients

    @contextmanager
    def client(self, what: str = "http") -> Iterator[httpx.Client]:
        """Borrow a client for one request (``what`` names the call if none is free in time)."""
        client = self._borrow(what)
        try:
            yield client
        finally:
            self._free.put(client)

    def _borrow(self, what: str) -> httpx.Client:
        try:
            return self._free.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            build = self._count < self._max
            if build:
                self._count += 1
        if build:
            return self._build()  # outside the lock: building takes milliseconds
        try:
            return self._free.get(timeout=self._wait)
        except queue.Empty:
            # Nothing was sent: not in doubt.
            raise ProviderUnavailable(
                f"{what}: no free HTTP client within {self._wait:g} s (all {self._max} in use)"
            ) from None

    def _build(self) -> httpx.Client:
        try:
            client = httpx.Client(
                timeout=self._timeout, limits=self._limits, auth=self._auth, verify=self._ssl
            )
        except BaseException:
            with self._lock:
                self._count -= 1  # give the reservation back
            raise
        with self._lock:
            self._all.append(client)
        return client

    def request(self, method: str, url: str, *, what: str, **kwargs: Any) -> httpx.Response:
        """Send one request; network faults become :class:`ProviderUnavailable`.

        ``what`` names the call in error messages (never the URL: some providers
        put the token in the path).
        """
        with self.client(what) as client:
            try:
                return client.request(method, url, **kwargs)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                # The request never left: nothing can have been processed.
                raise ProviderUnavailable(
                    f"{what}: could not connect ({type(exc).__name__})"
                ) from exc
            except httpx.TransportError as exc:
                # Written, then no clear answer: the provider may have processed it.
                raise ProviderUnavailable(
                    f"{what}: no answer ({type(exc).__name__})", in_doubt=True
                ) from exc

    def close(self) -> None:
        """Close every client this pool built."""
        with self._lock:
            clients, self._all = self._all, []
        for client in clients:
            client.close()


def json_bytes(body: Mapping[str, Any]) -> bytes:
    """A JSON request body as the adapters send it: compact, UTF-8, emoji as they are."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
