"""Pooled httpx clients, and the one place httpx failures become Herald errors.

One ``httpx.Client`` shared by hundreds of concurrent sends collapses (httpcore's
pool does O(N^2) work per request), and building one costs ~17 ms of CPU. So each
channel keeps a free list of clients, built on first need and reused: a send borrows
a client for its request and puts it back, so no client is shared by concurrent
requests. The clients of a pool share one SSL context, the expensive part. Safe under
threads and gevent (``queue.LifoQueue`` is patched by gevent's monkey-patching).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from herald.contract.errors import ProviderUnavailable

#: A client serves one send at a time, so it needs few connections.
CONNECTIONS_PER_CLIENT = 2


class ClientPool:
    """A free list of httpx clients for one channel."""

    def __init__(
        self,
        *,
        connect_timeout: float = 5.0,
        timeout: float = 15.0,
        max_clients: int = 64,
        auth: httpx.Auth | None = None,
    ) -> None:
        self._timeout = httpx.Timeout(timeout, connect=connect_timeout, pool=connect_timeout)
        self._limits = httpx.Limits(
            max_connections=CONNECTIONS_PER_CLIENT,
            max_keepalive_connections=CONNECTIONS_PER_CLIENT,
        )
        self._auth = auth
        self._ssl = httpx.create_ssl_context()
        self._free: queue.LifoQueue[httpx.Client] = queue.LifoQueue()
        self._all: list[httpx.Client] = []
        self._lock = threading.Lock()
        self._max = max_clients

    def _build(self) -> httpx.Client:
        client = httpx.Client(
            timeout=self._timeout, limits=self._limits, auth=self._auth, verify=self._ssl
        )
        with self._lock:
            self._all.append(client)
        return client

    @contextmanager
    def client(self) -> Iterator[httpx.Client]:
        """Borrow a client for one request."""
        try:
            client = self._free.get_nowait()
        except queue.Empty:
            with self._lock:
                full = len(self._all) >= self._max
            client = self._free.get() if full else self._build()
        try:
            yield client
        finally:
            self._free.put(client)

    def request(self, method: str, url: str, *, what: str, **kwargs: Any) -> httpx.Response:
        """Send one request; network faults become :class:`ProviderUnavailable`.

        ``what`` names the call in error messages (never the URL: some providers
        put the token in the path).
        """
        with self.client() as client:
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


def retry_after(response: httpx.Response) -> float | None:
    """Seconds from a ``Retry-After`` header given in seconds, if any."""
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def json_or_none(response: httpx.Response) -> Any:
    """The response's JSON body, or None when it has none."""
    try:
        return response.json()
    except ValueError:
        return None
