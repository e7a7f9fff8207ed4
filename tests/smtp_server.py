"""A real SMTP server for the tests (aiosmtpd on 127.0.0.1), and its ``smtp_server`` fixture.

It accepts AUTH PLAIN and LOGIN without TLS for user ``herald`` and the password in
``SANDBOX_EMAIL_SMTP`` (``smtp-secret`` by default), keeps every message it accepts, and can
be scripted: :meth:`SmtpServer.fail_next` makes the next MAIL, RCPT or DATA answer a given
reply, :meth:`SmtpServer.stall_next` makes the next DATA wait (so the client times out).

Test modules import it before pytest registers it as a plugin (``pytest_plugins``), so its
asserts could not be rewritten; it has none: PYTEST_DONT_REWRITE.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, cast

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

USER = "herald"
DEFAULT_PASSWORD = "smtp-secret"


@dataclass(frozen=True)
class Received:
    """One accepted message: the parsed email and its envelope."""

    message: EmailMessage
    mail_from: str
    rcpt_tos: list[str]
    mail_options: list[str]
    raw: bytes
    #: The user the session authenticated as, or None.
    login: str | None


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    def _scripted(self, phase: str) -> str | None:
        with self.server.lock:
            queue = self.server.scripted
            if queue and queue[0][0] == phase:
                return queue.popleft()[1]
        return None

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self._scripted("mail")
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self._scripted("rcpt")
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.server.lock:
            stall, self.server.stall_s = self.server.stall_s, 0.0
        if stall:
            await asyncio.sleep(stall)
        reply = self._scripted("data")
        if reply:
            return reply
        raw = cast(bytes, envelope.original_content or envelope.content)
        message = cast(EmailMessage, message_from_bytes(raw, policy=policy.default))
        login = session.auth_data.login.decode() if session.auth_data else None
        received = Received(
            message=message,
            mail_from=str(envelope.mail_from),
            rcpt_tos=list(envelope.rcpt_tos),
            mail_options=list(envelope.mail_options),
            raw=raw,
            login=login,
        )
        with self.server.lock:
            self.server.messages.append(received)
        return "250 2.0.0 Message accepted for delivery"


class _Session(Session):
    """aiosmtpd's session without the deprecated ``login_data`` warning it triggers itself
    on every successful AUTH (the tests turn warnings into errors)."""

    @property
    def login_data(self) -> Any:
        return self._login_data

    @login_data.setter
    def login_data(self, value: Any) -> None:
        self._login_data = value


class _SMTP(SMTP):
    def _create_session(self) -> Session:
        return _Session(self.loop)


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _SMTP(self.handler, **self.SMTP_kwargs)


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class SmtpServer:
    """aiosmtpd in a thread of its own; ``.port``, ``.messages``, ``fail_next``."""

    def __init__(
        self,
        *,
        password: str | None = None,
        size_limit: int | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.host = host
        self.port = 0
        self.password = password or os.environ.get("SANDBOX_EMAIL_SMTP", DEFAULT_PASSWORD)
        self.size_limit = size_limit
        self.messages: list[Received] = []
        self.scripted: deque[tuple[str, str]] = deque()
        self.stall_s = 0.0
        self.lock = threading.Lock()
        self._controller: _Controller | None = None

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login == USER.encode()
            and data.password == self.password.encode()
        )
        return AuthResult(success=ok, handled=False, auth_data=data if ok else None)

    def start(self) -> SmtpServer:
        """Listen on a free port."""
        self.port = _free_port(self.host)
        options: dict[str, Any] = {}
        if self.size_limit is not None:
            options["data_size_limit"] = self.size_limit
        self._controller = _Controller(
            _Handler(self),
            hostname=self.host,
            port=self.port,
            server_hostname="smtp.herald.test",
            authenticator=self._authenticate,
            auth_require_tls=False,
            **options,
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop listening and end open sessions."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def fail_next(self, code: int, text: str, *, at: str = "rcpt") -> None:
        """Answer the next ``at`` command (``mail``, ``rcpt`` or ``data``) with ``code text``."""
        if at not in ("mail", "rcpt", "data"):
            raise ValueError(f"at must be mail, rcpt or data, not {at!r}")
        with self.lock:
            self.scripted.append((at, f"{code} {text}"))

    def stall_next(self, seconds: float) -> None:
        """Make the next DATA wait ``seconds`` before it answers."""
        with self.lock:
            self.stall_s = seconds

    def clear(self) -> None:
        """Forget received messages and scripted replies."""
        with self.lock:
            self.messages.clear()
            self.scripted.clear()
            self.stall_s = 0.0

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SmtpServer]:
    """The test SMTP server of the whole run (the ``mail`` test channel points at it)."""
    with SmtpServer() as server:
        yield server
