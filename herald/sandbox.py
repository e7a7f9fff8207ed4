"""A local sandbox of Herald's providers, answering exactly as PROVIDERS.md documents.

Used by ``herald demo`` and by the tests: a stdlib HTTP server on 127.0.0.1 (a
free port by default) in a daemon thread. Each provider is one entry of
:data:`ROUTES` (a path pattern and a small handler function), so adding a
provider is adding an entry. Special recipients reproduce documented errors
deterministically (Telegram chat ``"blocked"``, ``"missing"``, ``"flood"``,
``"migrated"``; custom recipient ``"blocked"``, ``"flood"``), and
:meth:`Sandbox.fail_next` scripts any other answer.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import re
import socket
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, cast

#: The example token of Telegram's own documentation.
DEFAULT_TELEGRAM_TOKEN = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"
#: A fixed Standard Webhooks secret (``whsec_`` + base64 key), so demos can be configured.
DEFAULT_WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"herald-sandbox-webhook-key-32b!!").decode()
#: Seconds the flood recipients are told to wait.
FLOOD_RETRY_AFTER = 1
#: Where the Telegram chat ``"migrated"`` moved to.
MIGRATED_CHAT_ID = -1001234567890
#: Standard Webhooks' timestamp tolerance, in seconds.
WEBHOOK_TOLERANCE_S = 300


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
class Route:
    """One provider: the paths it answers, its handler, and how to redact its paths."""

    provider: str
    pattern: re.Pattern[str]
    handler: Handler
    redact: Callable[[str], str] = lambda path: path


#: Every provider the sandbox speaks, keyed by provider name.
ROUTES: dict[str, Route] = {}


def route(
    provider: str, pattern: str, redact: Callable[[str], str] | None = None
) -> Callable[[Handler], Handler]:
    """Register a handler as the sandbox's ``provider``."""

    def register(handler: Handler) -> Handler:
        ROUTES[provider] = Route(provider, re.compile(pattern), handler, redact or (lambda p: p))
        return handler

    return register


# --- Telegram Bot API ---------------------------------------------------------------------------

_TELEGRAM_MEDIA = {
    "sendPhoto": "photo",
    "sendDocument": "document",
    "sendVideo": "video",
    "sendAudio": "audio",
}
#: Chat ids that always fail: (status, description, parameters).
_TELEGRAM_CHATS: dict[str, tuple[int, str, dict[str, Any] | None]] = {
    "blocked": (403, "Forbidden: bot was blocked by the user", None),
    "missing": (400, "Bad Request: chat not found", None),
    "flood": (
        429,
        f"Too Many Requests: retry after {FLOOD_RETRY_AFTER}",
        {"retry_after": FLOOD_RETRY_AFTER},
    ),
    "migrated": (
        400,
        "Bad Request: group chat was upgraded to a supergroup chat",
        {"migrate_to_chat_id": MIGRATED_CHAT_ID},
    ),
}


def _tg_error(status: int, description: str, parameters: dict[str, Any] | None = None) -> Answer:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return Answer.of(status, body)


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _tg_check(method: str, params: dict[str, Any]) -> str | None:
    """The Bad Request description for invalid parameters, or None."""
    if params.get("chat_id") in (None, ""):
        return "chat_id is empty"
    if method == "sendMessage":
        text = params.get("text")
        if not isinstance(text, str) or not text:
            return "message text is empty"
        if _utf16_len(text) > 4096:
            return "message is too long"
    else:
        kind = _TELEGRAM_MEDIA[method]
        if not params.get(kind):
            return f"there is no {kind} in the request"
        caption = params.get("caption")
        if isinstance(caption, str) and _utf16_len(caption) > 1024:
            return "message caption is too long"
    markup = params.get("reply_markup")
    rows = markup.get("inline_keyboard", []) if isinstance(markup, dict) else []
    for button in (b for row in rows for b in row if isinstance(b, dict)):
        if len(str(button.get("callback_data", "")).encode()) > 64:
            return "BUTTON_DATA_INVALID"
    return None


def _bot_id(token: str) -> int:
    head = token.split(":", 1)[0]
    return int(head) if head.isdigit() else 0


def _hide_token(path: str) -> str:
    return re.sub(r"^/bot[^/]+/", "/bot<token>/", path)


@route("telegram", r"^/bot(?P<token>[^/]+)/(?P<method>\w+)$", _hide_token)
def telegram(box: Sandbox, req: Incoming) -> Answer:
    """``POST /bot<TOKEN>/<method>``: sendMessage and the single-media sends."""
    if not hmac.compare_digest(req.match["token"], box.telegram_token):
        return _tg_error(401, "Unauthorized")
    method = req.match["method"]
    if method != "sendMessage" and method not in _TELEGRAM_MEDIA:
        return _tg_error(404, "Not Found")
    params = req.json()
    params = params if isinstance(params, dict) else {}
    problem = _tg_check(method, params)
    if problem:
        return _tg_error(400, f"Bad Request: {problem}")
    chat = str(params["chat_id"])
    if chat in _TELEGRAM_CHATS:
        return _tg_error(*_TELEGRAM_CHATS[chat])
    result: dict[str, Any] = {
        "message_id": box.next_id(f"telegram:{chat}"),
        "from": {"id": _bot_id(box.telegram_token), "is_bot": True, "first_name": "Herald"},
        "chat": {"id": int(chat) if re.fullmatch(r"-?\d+", chat) else chat, "type": "private"},
        "date": int(time.time()),
    }
    if method == "sendMessage":
        result["text"] = params["text"]
    else:
        file = {"file_id": f"sandbox-{result['message_id']}", "file_unique_id": "sandbox"}
        result[_TELEGRAM_MEDIA[method]] = [file] if method == "sendPhoto" else file
        if params.get("caption"):
            result["caption"] = params["caption"]
    if params.get("reply_markup"):
        result["reply_markup"] = params["reply_markup"]
    return Answer.of(200, {"ok": True, "result": result})


# --- Custom channel (Standard Webhooks) ---------------------------------------------------------

_WEBHOOK_DATA_KEYS = {"job_id", "workflow", "contact_id", "channel_id", "recipient", "message"}
#: Recipients that always fail: (status, body, headers).
_WEBHOOK_RECIPIENTS: dict[str, tuple[int, dict[str, Any], dict[str, str]]] = {
    "blocked": (403, {"error": "recipient blocked"}, {}),
    "flood": (429, {"error": "too many requests"}, {"Retry-After": str(FLOOD_RETRY_AFTER)}),
}


def _signed(secret: str, req: Incoming) -> bool:
    """Whether the Standard Webhooks headers sign this body under ``secret``, in time."""
    msg_id = req.headers.get("webhook-id", "")
    stamp = req.headers.get("webhook-timestamp", "")
    if not msg_id or not stamp.isdigit() or abs(time.time() - int(stamp)) > WEBHOOK_TOLERANCE_S:
        return False
    key = secret.removeprefix("whsec_")
    try:
        raw_key = base64.b64decode(key + "=" * (-len(key) % 4))
    except binascii.Error:
        return False
    mac = hmac.new(raw_key, f"{msg_id}.{stamp}.".encode() + req.body, hashlib.sha256).digest()
    expected = "v1," + base64.b64encode(mac).decode()
    offered = req.headers.get("webhook-signature", "").split()
    return any(hmac.compare_digest(expected, sig) for sig in offered)


def _webhook_problem(doc: Any, stamp: str) -> str | None:
    """What is wrong with a ``message.send`` body (CONTRACT §6), or None."""
    if not isinstance(doc, dict) or set(doc) != {"type", "timestamp", "data"}:
        return "body must be an object with exactly type, timestamp and data"
    if doc["type"] != "message.send":
        return "type must be message.send"
    instant = datetime.fromtimestamp(int(stamp), UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    if doc["timestamp"] != instant:
        return "timestamp must be the instant of webhook-timestamp"
    if not isinstance(doc["data"], dict) or set(doc["data"]) != _WEBHOOK_DATA_KEYS:
        return "data must hold exactly " + ", ".join(sorted(_WEBHOOK_DATA_KEYS))
    return None


@route("custom", r"^/webhook(/.*)?$")
def custom(box: Sandbox, req: Incoming) -> Answer:
    """``POST /webhook...``: verify, validate, deduplicate by ``webhook-id``."""
    if req.method != "POST":
        return Answer.of(405, {"error": "method not allowed"})
    if not _signed(box.webhook_secret, req):
        return Answer.of(401, {"error": "invalid signature"})
    doc = req.json()
    problem = _webhook_problem(doc, req.headers["webhook-timestamp"])
    if problem:
        return Answer.of(400, {"error": problem})
    recipient = doc["data"]["recipient"]
    if recipient in _WEBHOOK_RECIPIENTS:
        return Answer.of(*_WEBHOOK_RECIPIENTS[recipient])
    message_id, seen = box.once(
        f"custom:{req.headers['webhook-id']}", lambda: f"wh-{box.next_id('custom')}"
    )
    return replace(Answer.of(200, {"message_id": message_id}), duplicate=seen)


# --- The server ---------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True

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
        self,
        *,
        telegram_token: str = DEFAULT_TELEGRAM_TOKEN,
        webhook_secret: str = DEFAULT_WEBHOOK_SECRET,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.telegram_token = telegram_token
        self.webhook_secret = webhook_secret
        self.delay_s = 0.0
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

    def once(self, key: str, make: Callable[[], str]) -> tuple[str, bool]:
        """The value remembered under ``key`` (made now if new) and whether it was known."""
        with self._lock:
            if key in self._memory:
                return self._memory[key], True
            self._memory[key] = make()
            return self._memory[key], False

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
        try:
            answer = scripted or entry.handler(self, Incoming(method, bare, headers, body, match))
        except Exception as exc:  # a sandbox bug: answer it rather than drop the connection
            traceback.print_exc()
            answer = Answer.of(500, {"error": f"sandbox bug: {type(exc).__name__}: {exc}"})
        seen = Recorded(method, entry.redact(path), headers, body, entry.provider, answer.duplicate)
        with self._lock:
            self._requests.append(seen)
        return answer
