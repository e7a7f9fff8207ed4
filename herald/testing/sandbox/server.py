"""The sandbox's server: a stdlib HTTP server on 127.0.0.1 in a daemon thread.

Providers register with :func:`route` (a path pattern, a handler, how to redact the path,
the default credential); the modules of this package beside this one are the providers.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import socket
import struct
import sys
import threading
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, cast

#: Seconds the flood recipients are told to wait.
FLOOD_RETRY_AFTER = 1


@dataclass(frozen=True)
class Recorded:
    """One request the sandbox received (secrets in the path replaced)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    provider: str
    #: The provider recognised the request as a resend of one it already accepted.
    duplicate: bool = False

    def json(self) -> Any:
        """The body, decoded as JSON."""
        return json.loads(self.body)


@dataclass(frozen=True)
class Incoming:
    """What a handler sees: the request and its route's path match."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    match: re.Match[str]
    #: The query string (after "?"), undecoded.
    query: str = ""

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None


@dataclass(frozen=True)
class Answer:
    """A handler's reply."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    duplicate: bool = False
    #: A network fault instead of an answer: "reset" (RST) or "hang" (no answer).
    fault: str | None = None

    @classmethod
    def of(
        cls, status: int, body: dict[str, Any] | str | bytes, headers: dict[str, str] | None = None
    ) -> Answer:
        """An answer with a JSON (dict), text (str) or raw (bytes) body."""
        if isinstance(body, dict):
            data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
            kind = "application/json"
        elif isinstance(body, str):
            data, kind = body.encode(), "text/plain; charset=utf-8"
        else:
            data, kind = body, "application/octet-stream"
        return cls(status, data, {"content-type": kind, **(headers or {})})


Handler = Callable[["Sandbox", Incoming], Answer]


@dataclass(frozen=True)
class Chaos:
    """Random faults for load and chaos tests, each a probability per request.

    "before" faults happen before the provider processes the request (nothing was sent);
    "after" faults happen once it has (the message went out, but the client cannot know):
    exactly the in-doubt cases of docs/delivery.md.
    """

    fail_before: float = 0.0  # 503
    throttle: float = 0.0  # 429 with Retry-After / retry_after
    reset_before: float = 0.0  # connection reset
    fail_after: float = 0.0  # processed, then 500
    reset_after: float = 0.0  # processed, then connection reset
    hang_after: float = 0.0  # processed, then no answer for hang_s
    hang_s: float = 5.0
    retry_after_s: int = 1

    def roll(self, rng: random.Random) -> str | None:
        """Pick this request's fault, if any."""
        point = rng.random()
        for name in (
            "fail_before",
            "throttle",
            "reset_before",
            "fail_after",
            "reset_after",
            "hang_after",
        ):
            point -= getattr(self, name)
            if point < 0:
                return name
        return None

    def before(self, fault: str) -> Answer | None:
        """The answer of a fault that strikes before processing."""
        if fault == "fail_before":
            return Answer.of(503, {"ok": False, "error_code": 503, "description": "Unavailable"})
        if fault == "throttle":
            seconds = self.retry_after_s
            return Answer.of(
                429,
                {
                    "ok": False,
                    "error_code": 429,
                    "description": f"Too Many Requests: retry after {seconds}",
                    "parameters": {"retry_after": seconds},
                },
                {"Retry-After": str(seconds)},
            )
        if fault == "reset_before":
            return Answer(0, fault="reset")
        return None

    def after(self, fault: str, answer: Answer) -> Answer:
        """What the client gets when a fault strikes after processing."""
        if fault == "fail_after":
            return Answer.of(500, {"ok": False, "error_code": 500, "description": "Internal"})
        if fault == "reset_after":
            return Answer(0, fault="reset")
        if fault == "hang_after":
            return Answer(0, fault="hang")
        return answer


@dataclass(frozen=True)
class Route:
    """One provider: the paths it answers, its handler, and how to redact its paths."""

    provider: str
    pattern: re.Pattern[str]
    handler: Handler
    redact: Callable[[str], str] = lambda path: path


#: Every provider the sandbox speaks, keyed by provider name.
ROUTES: dict[str, Route] = {}


#: The credential each provider accepts unless a test says otherwise.
DEFAULT_SECRETS: dict[str, str] = {}


def route(
    provider: str,
    pattern: str,
    redact: Callable[[str], str] | None = None,
    *,
    secret: str = "",
) -> Callable[[Handler], Handler]:
    """Register a handler as the sandbox's ``provider``, accepting ``secret`` by default."""

    def register(handler: Handler) -> Handler:
        ROUTES[provider] = Route(provider, re.compile(pattern), handler, redact or (lambda p: p))
        DEFAULT_SECRETS[provider] = secret
        return handler

    return register


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Many worker threads open connections at once (socketserver's default backlog is 5).
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], box: Sandbox) -> None:
        self.box = box
        self.open: set[socket.socket] = set()
        self.open_lock = threading.Lock()
        super().__init__(address, _RequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.open_lock:
            self.open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.open_lock:
            self.open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up (timeout tests) are expected; anything else is a bug to show.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in separate writes: without TCP_NODELAY, Nagle and delayed
    # ACKs hold every answer back ~40 ms.
    disable_nagle_algorithm = True
    server_version = "HeraldSandbox/1"

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request log line."""

    def _serve(self) -> None:
        box = cast(_Server, self.server).box
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        answer = box.answer(self.command, self.path, headers, body)
        if answer.fault:
            self.close_connection = True
            if answer.fault == "hang" and box.chaos and box.stopping.wait(box.chaos.hang_s):
                return
            # Close with RST: the client sees a reset, not an orderly end.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return
        if box.delay_s and box.stopping.wait(box.delay_s):
            return
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)


class Sandbox:
    """A local provider server: start it, point channels' ``base_url`` at :attr:`url`."""

    def __init__(
        self, *, secrets: dict[str, str] | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        #: The credential each provider accepts: its default, or the one given here.
        self.secrets = {**DEFAULT_SECRETS, **(secrets or {})}
        self.delay_s = 0.0
        #: Random faults (load and chaos tests); None answers every request properly.
        self.chaos: Chaos | None = None
        self._rng = random.Random()
        self.stopping = threading.Event()
        self._address = (host, port)
        self._lock = threading.RLock()
        self._requests: list[Recorded] = []
        self._scripted: dict[str, deque[Answer]] = {}
        self._counters: dict[str, int] = {}
        self._memory: dict[str, str] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""
        from herald.testing.sandbox.callbacks import Callbacks  # it imports provider modules

        #: Where the sandbox calls back after a send (signed statuses, replies); none yet.
        self.callbacks = Callbacks()

    def start(self) -> Sandbox:
        """Bind and serve in a daemon thread."""
        self.stopping.clear()
        self._server = _Server(self._address, self)
        host, port = self._server.server_address[:2]
        self.url = f"http://{host!s}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # how long stop() waits for the loop
            name="herald-sandbox",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, hang up open connections and release the port."""
        server, self._server = self._server, None
        if server is None:
            return
        self.stopping.set()
        server.shutdown()
        with server.open_lock:
            for sock in server.open:
                with contextlib.suppress(OSError):  # already closed by the client
                    sock.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def requests(self) -> list[Recorded]:
        """Every request received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        """Forget recorded requests and scripted answers (ids keep counting)."""
        with self._lock:
            self._requests.clear()
            self._scripted.clear()

    def fail_next(
        self,
        provider: str,
        status: int,
        body: dict[str, Any] | str | bytes,
        *,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the provider's next ``times`` requests with this, before normal handling."""
        if provider not in ROUTES:
            raise ValueError(f"unknown provider {provider!r}; known: {', '.join(sorted(ROUTES))}")
        answer = Answer.of(status, body, headers)
        with self._lock:
            self._scripted.setdefault(provider, deque()).extend([answer] * times)

    def delay(self, seconds: float) -> None:
        """Wait this long before every answer (0 turns it off)."""
        self.delay_s = seconds

    def next_id(self, scope: str) -> int:
        """The next number of a counter (1, 2, ...), for handlers."""
        with self._lock:
            self._counters[scope] = self._counters.get(scope, 0) + 1
            return self._counters[scope]

    def counter(self, scope: str) -> int:
        """A counter's current value (0 if never counted)."""
        with self._lock:
            return self._counters.get(scope, 0)

    def once(self, key: str, make: Callable[[], str]) -> tuple[str, bool]:
        """The value remembered under ``key`` (made now if new) and whether it was known."""
        with self._lock:
            if key in self._memory:
                return self._memory[key], True
            self._memory[key] = make()
            return self._memory[key], False

    def recall(self, key: str) -> str | None:
        """The value remembered under ``key`` (by :meth:`once`), or None."""
        with self._lock:
            return self._memory.get(key)

    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        """Route one request to its provider, record it, and return the answer."""
        bare = path.split("?", 1)[0]
        for entry in ROUTES.values():
            match = entry.pattern.match(bare)
            if match:
                break
        else:
            return Answer.of(404, {"error": "no sandbox provider at this path"})
        with self._lock:
            queue = self._scripted.get(entry.provider)
            scripted = queue.popleft() if queue else None
            fault = self.chaos.roll(self._rng) if self.chaos and not scripted else None
        early = self.chaos.before(fault) if self.chaos and fault else None
        try:
            answer = (
                scripted
                or early
                or entry.handler(
                    self, Incoming(method, bare, headers, body, match, path.partition("?")[2])
                )
            )
        except Exception as exc:  # a sandbox bug: answer it rather than drop the connection
            traceback.print_exc()
            answer = Answer.of(500, {"error": f"sandbox bug: {type(exc).__name__}: {exc}"})
        if self.chaos and fault and early is None:
            answer = self.chaos.after(fault, answer)
        seen = Recorded(method, entry.redact(path), headers, body, entry.provider, answer.duplicate)
        with self._lock:
            self._requests.append(seen)
        if self.callbacks.targets and 200 <= answer.status < 300 and not answer.duplicate:
            self._call_back(entry.provider, body, answer)
        return answer

    def _call_back(self, provider: str, body: bytes, answer: Answer) -> None:
        """Report on the message a send just made, as the provider would, if told where."""
        from herald.testing.sandbox.callbacks import what_was_sent

        headers = {k.lower(): v for k, v in answer.headers.items()}
        try:
            sent = what_was_sent(provider, body, answer.status, headers, answer.body)
        except (KeyError, IndexError, TypeError):
            return  # not a send this sandbox reports on (a file, a getMe)
        if sent is not None:
            self.callbacks.after_send(sent)
