"""A local provider for the benchmark: Telegram's ``sendMessage`` answer after a set delay.

Runs in a process of its own (``python -m bench.provider --latency-ms 200``), so its work
is not counted in any worker's CPU, and waits with an asyncio timer (``asyncio.sleep``),
not a sleeping thread: thousands of requests can be waiting at once at no cost.

Every ``POST`` is answered as the Bot API answers ``sendMessage``
(``{"ok": true, "result": {"message_id": N, "chat": {"id": ...}, ...}}``), so Herald's
Telegram adapter accepts it and the bare HTTP task gets the same bytes. Two control paths,
not part of any provider: ``PUT /_bench/latency?ms=N`` sets the delay and ``GET
/_bench/stats`` returns ``{"requests": N, "latency_ms": N}``. It prints ``listening <port>``
on its first line of output once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

#: Largest request body read; the benchmark's jobs are a few hundred bytes.
MAX_BODY = 1 << 20


class Provider:
    """The server's state: the delay and a request counter."""

    def __init__(self, latency_s: float) -> None:
        self.latency_s = latency_s
        self.requests = 0
        self._ids = itertools.count(1)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one keep-alive connection until the client closes it."""
        try:
            while await self._one(reader, writer):
                pass
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, target, version = request_line.split(" ", 2)
        headers = {}
        for line in header_lines:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        length = min(int(headers.get("content-length", "0") or 0), MAX_BODY)
        body = await reader.readexactly(length) if length else b""
        status, payload = await self._answer(method, target, body)
        keep = headers.get("connection", "").lower() != "close" and version == "HTTP/1.1"
        data = json.dumps(payload, separators=(",", ":")).encode()
        writer.write(
            f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n"
            f"Connection: {'keep-alive' if keep else 'close'}\r\n\r\n".encode()
            + data
        )
        await writer.drain()
        return keep

    async def _answer(self, method: str, target: str, body: bytes) -> tuple[int, dict[str, Any]]:
        url = urlsplit(target)
        if url.path == "/_bench/stats":
            return 200, {"requests": self.requests, "latency_ms": self.latency_s * 1000}
        if url.path == "/_bench/latency":
            self.latency_s = float(parse_qs(url.query).get("ms", ["0"])[0]) / 1000
            return 200, {"latency_ms": self.latency_s * 1000}
        if method != "POST":
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        self.requests += 1
        if self.latency_s > 0:
            await asyncio.sleep(self.latency_s)
        return 200, self.send_message(body)

    def send_message(self, body: bytes) -> dict[str, Any]:
        """Telegram's answer to ``sendMessage`` for this request body."""
        try:
            params = json.loads(body) if body else {}
        except ValueError:
            params = {}
        chat: Any = params.get("chat_id", 0) if isinstance(params, dict) else 0
        if isinstance(chat, str) and chat.lstrip("-").isdigit():
            chat = int(chat)
        text = params.get("text", "") if isinstance(params, dict) else ""
        return {
            "ok": True,
            "result": {
                "message_id": next(self._ids),
                "from": {"id": 123456, "is_bot": True, "first_name": "Bench"},
                "chat": {"id": chat, "type": "private"},
                "date": int(time.time()),
                "text": text,
            },
        }


async def serve(latency_s: float, port: int) -> None:
    """Listen on 127.0.0.1:``port`` (0: any free port) until cancelled."""
    provider = Provider(latency_s)
    server = await asyncio.start_server(provider.handle, "127.0.0.1", port, backlog=1024)
    print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description="The benchmark's local provider.")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.latency_ms / 1000, args.port))


if __name__ == "__main__":
    main()
