"""Pooled httpx clients held to an overall deadline, the one place httpx failures become Herald
errors, and JSON bodies.

One ``httpx.Client`` shared by hundreds of concurrent sends collapses (httpcore's
pool does O(N^2) work per request), and building one costs ~17 ms of CPU. So each
channel keeps a free list of clients, built on first need and reused: a send borrows
a client for its request and puts it back, so no client is shared by concurrent
requests. Every client shares one SSL context, the expensive part. Safe under threads
and gevent (``queue.LifoQueue`` and ``threading.Lock`` are patched by gevent).

The deadline: httpx timeouts are per read, so a provider sending a byte every few seconds
keeps one request alive for ever, past the job's lease (another worker then takes the job
over and sends it twice). httpx has no total timeout (encode/httpx#1450), so each client's
connections run on a network backend that caps every connect, TLS handshake, read and write
at the time left before the deadline of the request being served: a trickle and a single
stalled read both end at the deadline, without a watchdog thread.
"""

from __future__ import annotations

import json
import queue
import ssl
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpcore
import httpx

from herald.adapters.deadline import Deadline, DeadlineBackend
from herald.adapters.masking import Mask, MaskedCause
from herald.contract.errors import ProviderUnavailable

#: A client serves one send at a time, so it needs few connections.
CONNECTIONS_PER_CLIENT = 2


def _transport(
    ssl_context: ssl.SSLContext, limits: httpx.Limits, clock: Deadline
) -> httpx.HTTPTransport:
    """An httpx transport whose connections run on a :class:`_DeadlineBackend`."""
    transport = httpx.HTTPTransport(verify=ssl_context, limits=limits)
    if not isinstance(getattr(transport, "_pool", None), httpcore.ConnectionPool):
        # Fail at start rather than run without deadlines after an httpx upgrade.
        raise RuntimeError("httpx.HTTPTransport no longer keeps its pool in _pool")
    # httpx takes no network backend; its httpcore pool does, so it is rebuilt with ours
    # (the same options HTTPTransport gives it).
    transport._pool = httpcore.ConnectionPool(
        ssl_context=ssl_context,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=DeadlineBackend(clock),
    )
    return transport


class ClientPool:
    """A free list of at most ``max_clients`` httpx clients for one channel.

    With ``deadline_s``, a request (or a borrowed client) must be done within that many
    seconds, whatever the per-step ``timeout`` allows.
    """

    def __init__(
        self,
        *,
        connect_timeout: float = 5.0,
        timeout: float = 15.0,
        max_clients: int = 64,
        auth: httpx.Auth | None = None,
        ssl_context: ssl.SSLContext | None = None,
        deadline_s: float | None = None,
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
        #: Seconds a whole request may take; None: per-step timeouts only.
        self.deadline_s = deadline_s
        #: Hides the secrets of the adapters using this pool in what errors are raised from.
        self.mask = Mask()
        self._free: queue.LifoQueue[httpx.Client] = queue.LifoQueue()
        self._all: list[httpx.Client] = []
        self._clocks: dict[httpx.Client, Deadline] = {}
        #: Clients built or being built; reserved under the lock, so never over the maximum.
        self._count = 0
        self._lock = threading.Lock()
        self._max = max_clients

    def hide(self, mask: Mask) -> None:
        """Also hide what ``mask`` hides (each adapter gives its pool its mask)."""
        self.mask = self.mask | mask

    @contextmanager
    def client(self, what: str = "http") -> Iterator[httpx.Client]:
        """Borrow a client for one request (``what`` names the call if none is free in time);
        all it does ends within ``deadline_s`` from now."""
        client = self._borrow(what)
        clock = self._clocks.get(client, Deadline())  # a stand-in if the pool was closed
        clock.start(self.deadline_s)
        try:
            yield client
        finally:
            clock.start(None)
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
        clock = Deadline()
        try:
            client = httpx.Client(
                timeout=self._timeout,
                auth=self._auth,
                transport=_transport(self._ssl, self._limits, clock),
            )
        except BaseException:
            with self._lock:
                self._count -= 1  # give the reservation back
            raise
        with self._lock:
            self._all.append(client)
            self._clocks[client] = clock
        return client

    def request(self, method: str, url: str, *, what: str, **kwargs: Any) -> httpx.Response:
        """Send one request; network faults and the deadline become :class:`ProviderUnavailable`.

        ``what`` names the call in error messages (never the URL: some providers
        put the token in the path).
        """
        with self.client(what) as client:
            clock = self._clocks.get(client, Deadline())
            try:
                return client.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                failed = exc
                error = self._unavailable(exc, what, late=clock.binding)
        # Raised here, not in the handler: the httpx error (which may quote a header, token
        # and all) must not ride along as the context; a masked copy is the cause.
        raise error from MaskedCause.of(failed, self.mask)

    def _unavailable(
        self, exc: httpx.TransportError, what: str, *, late: bool
    ) -> ProviderUnavailable:
        name = type(exc).__name__
        late = late and self.deadline_s is not None and isinstance(exc, httpx.TimeoutException)
        within = f"within the {self.deadline_s:g} s deadline" if late else ""
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
            # The request never left: nothing can have been processed.
            said = f"could not connect {within}" if late else "could not connect"
            return ProviderUnavailable(f"{what}: {said} ({name})")
        # Written, then no clear answer: the provider may have processed it.
        said = f"no complete answer {within}" if late else "no answer"
        return ProviderUnavailable(f"{what}: {said} ({name})", in_doubt=True)

    def close(self) -> None:
        """Close every client this pool built."""
        with self._lock:
            clients, self._all, self._clocks = self._all, [], {}
        for client in clients:
            client.close()


def json_bytes(body: Mapping[str, Any]) -> bytes:
    """A JSON request body as the adapters send it: compact, UTF-8, emoji as they are."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
