"""A real ``herald webhooks`` server for the tests (uvicorn on a free loopback port, in a
thread), and readers of the inbound and status streams."""

from __future__ import annotations

import json
import socket
import threading
import time
from types import TracebackType
from typing import Any

import httpx
import redis
import uvicorn

from herald.config import Settings, load_channels
from herald.store.connection import redis_client, resolve_urls
from herald.testing.sandbox.callbacks import Webhook, signed
from herald.webhooks import create_app


class WebhookServer:
    """``create_app`` served by uvicorn over real HTTP, with the test settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.channels = load_channels(settings.channels_file)
        self.client = redis_client(resolve_urls(settings).redis, max_connections=16)
        self.redis: redis.Redis = redis.Redis.from_url(
            resolve_urls(settings).redis, decode_responses=True
        )
        self.http = httpx.Client(timeout=10)
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.base = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        app = create_app(settings, self.channels, self.client)
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def __enter__(self) -> WebhookServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the webhook server did not start")
            time.sleep(0.02)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self.http.close()
        self.client.close()
        self.redis.close()
        self._sock.close()

    def url(self, channel_id: str) -> str:
        """The webhook URL of ``channel_id``."""
        return f"{self.base}/webhooks/{channel_id}"

    def post(self, channel_id: str, call: Webhook, **signing: Any) -> httpx.Response:
        """POST ``call`` to ``channel_id``'s webhook, signed as its provider signs."""
        url = self.url(channel_id)
        return self.http.post(url, content=call.body, headers=signed(call, url, **signing))

    def inbound(self) -> list[dict[str, Any]]:
        """Every entry of the inbound stream: its ``event`` and decoded ``data``."""
        return _entries(self.redis, self.settings.inbound_stream)

    def statuses(self, job_id: str | None = None) -> list[dict[str, Any]]:
        """Entries of the status stream (of ``job_id`` when given)."""
        found = _entries(self.redis, self.settings.status_stream)
        return [e for e in found if job_id is None or e["job_id"] == job_id]

    def wait_statuses(self, job_id: str, count: int, timeout: float = 10) -> list[dict[str, Any]]:
        """The status entries of ``job_id``, once there are ``count`` of them."""
        deadline = time.monotonic() + timeout
        while len(found := self.statuses(job_id)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(found)} statuses for {job_id}, expected {count}")
            time.sleep(0.05)
        return found


def _entries(client: redis.Redis, stream: str) -> list[dict[str, Any]]:
    rows = client.xrange(stream)
    return [{**fields, "data": json.loads(fields["data"])} for _, fields in rows]
