"""ClientPool: never more clients than its maximum, and a bounded wait for a free one."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from herald.adapters.http import ClientPool
from herald.contract.errors import ProviderUnavailable
from tests.adapter_support import SHARED_SSL


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
