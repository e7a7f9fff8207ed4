"""ClientPool: never more clients than its maximum, a bounded wait for a free one, and an overall
deadline for each request however slowly the provider answers."""

from __future__ import annotations

import socketserver
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from herald.adapters.http import ClientPool
from herald.contract.errors import ProviderUnavailable
from herald.testing.sandbox import Sandbox
from tests.adapter_support import SHARED_SSL


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as box:
        yield box


class CountingPool(ClientPool):
    """A pool that counts the clients it builds, and builds slowly (to widen any race)."""

    def __init__(self, **options: float) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.built = 0

    def _build(self) -> httpx.Client:
        time.sleep(0.02)
        self.built += 1
        return super()._build()


def test_threads_hammering_the_pool_never_exceed_its_maximum() -> None:
    pool = CountingPool(max_clients=2, connect_timeout=5)
    start = threading.Barrier(16)
    used: set[int] = set()
    lock = threading.Lock()

    def borrow() -> None:
        start.wait()
        for _ in range(5):
            with pool.client() as client:
                with lock:
                    used.add(id(client))
                time.sleep(0.001)

    threads = [threading.Thread(target=borrow) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    pool.close()
    assert pool.built == 2
    assert len(used) == 2


def test_a_send_waits_for_a_free_client_at_most_the_connect_timeout() -> None:
    pool = ClientPool(ssl_context=SHARED_SSL, max_clients=1, connect_timeout=0.2)
    with pool.client():
        began = time.monotonic()
        with pytest.raises(ProviderUnavailable) as caught, pool.client("line push"):
            pass
        waited = time.monotonic() - began
    assert 0.2 <= waited < 1
    assert caught.value.message == "line push: no free HTTP client within 0.2 s (all 1 in use)"
    assert not caught.value.in_doubt  # nothing was sent
    with pool.client():  # the client came back
        pass
    pool.close()


# --- the overall deadline ---------------------------------------------------------------------


class Trickle:
    """A local HTTP server that answers one byte every ``gap_s`` seconds, or never.

    ``phase`` is where the slowness is: ``"headers"`` (from the status line on), ``"body"``
    (headers at once, then the body), or ``"silent"`` (reads the request, says nothing).
    """

    BODY = b'{"ok": true, "padding": "' + b"x" * 100 + b'"}'

    def __init__(self, phase: str, gap_s: float = 0.3) -> None:
        self.phase = phase
        self.gap_s = gap_s
        self.stop = threading.Event()
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/slow"

    def _handler(self) -> type[socketserver.BaseRequestHandler]:
        box = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                length = 0
                while line := self.rfile.readline():
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                    if line == b"\r\n":
                        break
                self.rfile.read(length)
                head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                head += b"content-length: %d\r\n\r\n" % len(box.BODY)
                if box.phase == "silent":
                    box.stop.wait(30)
                    return
                if box.phase == "body":
                    self.wfile.write(head)
                    self.wfile.flush()
                    head = b""
                for byte in head + box.BODY:
                    if box.stop.wait(box.gap_s):
                        return
                    try:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                    except OSError:  # the client gave up: what the test expects
                        return

        return Handler

    def __enter__(self) -> Trickle:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("phase", ["headers", "body"])
def test_an_answer_trickling_past_the_deadline_is_cut_and_in_doubt(phase: str) -> None:
    # Every read gets a byte well within the 5 s read timeout: only an overall deadline ends it.
    pool = ClientPool(ssl_context=SHARED_SSL, timeout=5, deadline_s=1.0)
    with Trickle(phase) as server:
        began = time.monotonic()
        with pytest.raises(ProviderUnavailable) as caught:
            pool.request("POST", server.url, what="line push", content=b"{}")
        took = time.monotonic() - began
    pool.close()
    assert 1.0 <= took < 1.5
    assert caught.value.in_doubt  # the request was written: the provider may have acted on it
    assert caught.value.message == (
        "line push: no complete answer within the 1 s deadline (ReadTimeout)"
    )


def test_a_single_read_stalled_past_the_deadline_is_cut_before_the_read_timeout() -> None:
    pool = ClientPool(ssl_context=SHARED_SSL, timeout=10, deadline_s=0.5)
    with Trickle("silent") as server:
        began = time.monotonic()
        with pytest.raises(ProviderUnavailable) as caught:
            pool.request("POST", server.url, what="viber send_message", content=b"{}")
        took = time.monotonic() - began
    pool.close()
    assert 0.5 <= took < 1.0
    assert caught.value.in_doubt


def test_a_connection_kept_alive_after_a_deadline_serves_the_next_request(
    sandbox: Sandbox,
) -> None:
    pool = ClientPool(ssl_context=SHARED_SSL, max_clients=1, deadline_s=1.0)
    with Trickle("body") as server, pytest.raises(ProviderUnavailable):
        pool.request("POST", server.url, what="slow", content=b"{}")
    for _ in range(3):  # the same client each time: its deadline was reset
        time.sleep(0.4)
        answer = pool.request("POST", f"{sandbox.url}/webhook/none", what="fast", json={})
        assert answer.status_code == 401  # the sandbox's answer: no signature
    pool.close()


def test_a_borrowed_client_is_held_to_the_deadline_too() -> None:
    # Attachment downloads borrow a client: they stop at the pool's deadline as well.
    pool = ClientPool(ssl_context=SHARED_SSL, timeout=5, deadline_s=0.6)
    with Trickle("body") as server, pool.client() as client:
        began = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            client.get(server.url)
        assert 0.6 <= time.monotonic() - began < 1.1
    pool.close()


def test_a_pool_without_a_deadline_keeps_per_read_timeouts_only() -> None:
    pool = ClientPool(ssl_context=SHARED_SSL, timeout=5)
    with Trickle("body", gap_s=0.01) as server:
        answer = pool.request("GET", server.url, what="fetch")  # ~1.3 s of trickle
    pool.close()
    assert answer.json()["ok"] is True
