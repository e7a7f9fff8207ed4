"""SmtpAdapter against a real SMTP server (aiosmtpd), attachments fetched from the sandbox."""

from __future__ import annotations

import asyncio
import base64
import socket
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from email.message import EmailMessage as Mime
from functools import partial
from typing import Any

import pydantic
import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session
from pydantic import SecretStr

from herald.adapters.email.attachments import MAX_ATTACHMENT_BYTES
from herald.adapters.email.smtp import SmtpAdapter
from herald.adapters.http import ClientPool
from herald.adapters.masking import MASK
from herald.config import SmtpChannel
from herald.contract.errors import (
    AuthFailed,
    InvalidContent,
    ProviderUnavailable,
    RateLimited,
    RecipientUnavailable,
    SendError,
)
from herald.contract.job import (
    Attachment,
    CustomPayload,
    EmailMessage,
    MediaMessage,
    WhatsAppTemplate,
    Workflow,
)
from herald.testing.sandbox import Sandbox
from herald.testing.sandbox.files import file_bytes
from tests import adapter_support as support
from tests.adapter_support import LOOPBACK, SHARED_SSL, closed_port, sandbox_fixture, text
from tests.adapter_support import SHORT_FAMILY as FAMILY
from tests.adapter_support import send_one as send
from tests.smtp_server import SmtpServer, _Controller

#: The ``smtp_server`` fixture, registered globally (conftest asks for it by name).
pytest_plugins = ["tests.smtp_server"]

PASSWORD = "smtp-test-password"


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    with SmtpServer(password=PASSWORD) as running:
        yield running


files = sandbox_fixture()


def make_adapter(port: int, *, deadline_s: float | None = None, **fields: Any) -> SmtpAdapter:
    config: dict[str, Any] = {
        "id": "mail",
        "type": "email_smtp",
        "host": "127.0.0.1",
        "port": port,
        "username": "herald",
        "password": SecretStr(PASSWORD),
        "from_address": "Herald Shop <shop@herald.test>",
        "security": "none",
        **fields,
    }
    pool = ClientPool(ssl_context=SHARED_SSL)
    return SmtpAdapter(
        SmtpChannel(**config), pool, deadline_s=deadline_s, fetch_allow_networks=LOOPBACK
    )


@pytest.fixture
def adapter(server: SmtpServer) -> Iterator[SmtpAdapter]:
    with closing(make_adapter(server.port)) as made:
        yield made


outbound = partial(
    support.outbound,
    channel_id="mail",
    recipient="ana@example.com",
    job_id="run-1:s1",
    workflow=Workflow(workflow_id="wf-1", run_id="run-1", step_id="s1"),
)
fail = partial(support.fail, secrets=[PASSWORD], send=send)


def email(**fields: Any) -> EmailMessage:
    return EmailMessage(type="email", **{"subject": "Hello", "html": "<p>Hi</p>", **fields})


def body_of(message: Mime, kind: str) -> str:
    part = message.get_body(preferencelist=(kind,))
    assert part is not None and part.get_content_type() == f"text/{kind}"
    return str(part.get_content()).replace("\r\n", "\n").removesuffix("\n")


# --- success ----------------------------------------------------------------------------------


def test_text_message_is_a_plain_email(server: SmtpServer, adapter: SmtpAdapter) -> None:
    ids = send(adapter, outbound(text(FAMILY)))

    [got] = server.messages
    assert got.mail_from == "shop@herald.test"
    assert got.rcpt_tos == ["ana@example.com"]
    assert got.login == "herald"  # authenticated
    assert got.mail_options == [f"SIZE={len(got.raw)}"]
    msg = got.message
    assert ids == [msg["Message-ID"]]
    assert msg.get_content_type() == "text/plain"
    assert msg["Subject"] == ""
    assert msg["From"] == "Herald Shop <shop@herald.test>"
    assert msg["To"] == "ana@example.com"
    assert msg["In-Reply-To"] == msg["References"]
    assert msg["In-Reply-To"].startswith("<thread-")
    assert body_of(msg, "plain") == FAMILY  # the ZWJ sequence intact


def test_html_email_has_a_text_alternative(server: SmtpServer, adapter: SmtpAdapter) -> None:
    html = '<p onclick="x()">Hi <b>Ana</b> &lt;3<br>see <a href="https://s.example/o">order</a></p>'
    send(adapter, outbound(email(subject=f"Order {FAMILY}", html=html)))

    msg = server.messages[0].message
    assert msg["Subject"] == f"Order {FAMILY}"
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert body_of(msg, "plain") == "Hi Ana <3\nsee order (https://s.example/o)"
    assert body_of(msg, "html") == (
        '<p>Hi <b>Ana</b> &lt;3<br>see <a href="https://s.example/o" rel="noopener noreferrer">'
        "order</a></p>"
    )


def test_five_attachments_arrive_with_their_bytes_names_and_types(
    server: SmtpServer, adapter: SmtpAdapter, files: Sandbox
) -> None:
    given = [
        ("invoice.pdf", 1234, None, "application/pdf"),
        ("photo.png", 5000, "Front view.png", "image/png"),
        ("clip.mp4", 70_000, None, "video/mp4"),
        ("notes.txt", 10, "notes.txt", "text/plain"),
        ("song.mp3", 3, None, "audio/mpeg"),
    ]
    attachments = [
        Attachment(url=f"{files.url}/files/{size}/{name}", kind="file", filename=filename)
        for name, size, filename, _ in given
    ]
    send(adapter, outbound(email(text="See attached", attachments=attachments)))

    msg = server.messages[0].message
    assert msg.get_content_type() == "multipart/mixed"
    assert body_of(msg, "plain") == "See attached"
    got = list(msg.iter_attachments())
    assert [(a.get_filename(), a.get_content_type()) for a in got] == [
        (filename or name, kind) for name, _, filename, kind in given
    ]
    for part, (name, size, _, _) in zip(got, given, strict=True):
        assert part.get_payload(decode=True) == file_bytes(name, size)
    assert [r.path for r in files.requests] == [f"/files/{s}/{n}" for n, s, _, _ in given]


def test_a_sixth_attachment_is_refused_by_the_model() -> None:
    six = [Attachment(url=f"https://f.example/{i}.pdf", kind="file") for i in range(6)]
    with pytest.raises(pydantic.ValidationError, match="at most 5 items"):
        EmailMessage(type="email", html="<p>x</p>", attachments=six)


def test_default_media_message_is_sent_as_attachments(
    server: SmtpServer, adapter: SmtpAdapter, files: Sandbox
) -> None:
    media = MediaMessage(
        type="media",
        attachments=[Attachment(url=f"{files.url}/files/64/a.jpg", kind="image", caption="Look")],
    )
    send(adapter, outbound(media))
    msg = server.messages[0].message
    assert msg["Subject"] == ""
    assert body_of(msg, "plain") == "Look"
    [part] = msg.iter_attachments()
    assert (part.get_filename(), part.get_content_type()) == ("a.jpg", "image/jpeg")
    assert part.get_payload(decode=True) == file_bytes("a.jpg", 64)


def test_no_auth_when_no_username_is_set(server: SmtpServer) -> None:
    with closing(make_adapter(server.port, username=None, password=None)) as adapter:
        send(adapter, outbound(text("hi")))
    assert server.messages[0].login is None


# --- content refused before any SMTP session --------------------------------------------------


def test_an_attachment_over_the_cap_is_invalid_content(
    server: SmtpServer, adapter: SmtpAdapter, files: Sandbox
) -> None:
    url = f"{files.url}/files/{MAX_ATTACHMENT_BYTES + 1}/huge.pdf"
    error = fail(adapter, outbound(email(attachments=[Attachment(url=url, kind="file")])))
    assert isinstance(error, InvalidContent)
    assert error.message == (
        "email_smtp: attachment huge.pdf is over 10 MB; the limit per attachment is 10 MB"
    )
    assert url not in error.message
    assert server.messages == []


def test_attachments_over_the_total_cap_are_invalid_content(
    server: SmtpServer, adapter: SmtpAdapter, files: Sandbox
) -> None:
    size = 9 * 1024 * 1024
    attachments = [
        Attachment(url=f"{files.url}/files/{size}/part{i}.bin", kind="file") for i in range(3)
    ]
    error = fail(adapter, outbound(email(attachments=attachments)))
    assert isinstance(error, InvalidContent)
    assert "attachments total over 25 MB (reached at part2.bin)" in error.message
    assert server.messages == []


def test_a_missing_attachment_is_invalid_content(
    server: SmtpServer, adapter: SmtpAdapter, files: Sandbox
) -> None:
    url = f"{files.url}/files/missing.pdf"
    error = fail(adapter, outbound(email(attachments=[Attachment(url=url, kind="file")])))
    assert isinstance(error, InvalidContent)
    assert error.message == "email_smtp: attachment missing.pdf was not found (HTTP 404)"
    assert server.messages == []


def test_an_attachment_server_error_is_transient(adapter: SmtpAdapter, files: Sandbox) -> None:
    url = f"{files.url}/files/broken.pdf"
    error = fail(adapter, outbound(email(attachments=[Attachment(url=url, kind="file")])))
    assert isinstance(error, ProviderUnavailable)
    assert "attachment broken.pdf could not be fetched now (HTTP 503)" in error.message


def test_an_attachment_network_fault_is_provider_unavailable(adapter: SmtpAdapter) -> None:
    url = f"http://127.0.0.1:{closed_port()}/files/invoice.pdf"
    error = fail(adapter, outbound(email(attachments=[Attachment(url=url, kind="file")])))
    assert isinstance(error, ProviderUnavailable)
    assert (error.in_doubt, error.provider_code) == (False, None)
    assert error.message == "email_smtp: could not fetch attachment invoice.pdf (ConnectError)"


def test_the_servers_size_limit_is_checked_before_mail() -> None:
    with SmtpServer(password=PASSWORD, size_limit=2000) as small:
        with closing(make_adapter(small.port)) as adapter:
            error = fail(adapter, outbound(email(text="x" * 3000)))
        assert isinstance(error, InvalidContent)
        assert "the server takes at most 2000 (SIZE)" in error.message
        assert small.messages == []


@pytest.mark.parametrize(
    "message",
    [
        CustomPayload(type="custom_payload", payload={"subject": "x"}),
        WhatsAppTemplate(type="whatsapp_template", name="t", language="en"),
    ],
    ids=["custom_payload", "whatsapp_template"],
)
def test_unsupported_types_are_invalid_content(adapter: SmtpAdapter, message: Any) -> None:
    with pytest.raises(InvalidContent, match=f"email_smtp cannot send {message.type}"):
        adapter.plan(outbound(message))


def test_a_recipient_that_is_no_address_is_unavailable(
    server: SmtpServer, adapter: SmtpAdapter
) -> None:
    with pytest.raises(RecipientUnavailable, match="not an email address"):
        adapter.plan(outbound(email(), recipient="+351911111111"))


# --- SMTP replies and faults ------------------------------------------------------------------

#: (reply code, command it answers, error): docs/channels/email_smtp.md#errors-and-retries.
#: An explicit reply, even to DATA, means the server did not take the message: never in doubt.
REPLIES: list[tuple[int, str, type[SendError]]] = [
    *(
        (code, at, ProviderUnavailable)
        for code in (421, 450, 451, 454, 471)
        for at in ("rcpt", "data")
    ),
    (452, "rcpt", RateLimited),
    (452, "data", RateLimited),
    (530, "rcpt", AuthFailed),
    (535, "rcpt", AuthFailed),
    (550, "rcpt", RecipientUnavailable),
    (551, "rcpt", RecipientUnavailable),
    (553, "rcpt", RecipientUnavailable),
    (550, "mail", AuthFailed),  # the server refuses our sender
    (552, "rcpt", InvalidContent),
    (554, "data", InvalidContent),
    (555, "rcpt", InvalidContent),
    (500, "rcpt", InvalidContent),  # any other 5yz
    (541, "rcpt", InvalidContent),
]


@pytest.mark.parametrize(("code", "at", "error"), REPLIES)
def test_smtp_replies_become_errors(
    server: SmtpServer, adapter: SmtpAdapter, code: int, at: str, error: type[SendError]
) -> None:
    server.fail_next(code, "5.0.0 refused  as  spam", at=at)
    exc = fail(adapter, outbound(email()))
    expected = (error, error.code, str(code), error.retryable, False)
    assert (type(exc), exc.code, exc.provider_code, exc.retryable, exc.in_doubt) == expected
    assert exc.message == f"smtp {at}: {code} 5.0.0 refused as spam"  # whitespace folded
    assert server.messages == []


def test_no_answer_after_data_is_in_doubt(server: SmtpServer, adapter: SmtpAdapter) -> None:
    server.stall_next(3)
    adapter.timeout_s = 0.5  # type: ignore[misc]
    error = fail(adapter, outbound(email()))
    assert isinstance(error, ProviderUnavailable)
    assert error.in_doubt is True
    assert error.message == "smtp data: no answer (SMTPReadTimeoutError)"


# --- secrets in AUTH replies ------------------------------------------------------------------


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


class EchoAuth:
    """An SMTP handler whose AUTH refusal quotes what the client sent, as some servers do."""

    async def auth_PLAIN(self, server: SMTP, args: list[str]) -> AuthResult:
        said = args[1] if len(args) > 1 else ""
        return AuthResult(success=False, handled=False, message=f"535 5.7.8 bad login {said}")

    async def auth_LOGIN(self, server: SMTP, args: list[str]) -> AuthResult:
        password = await server.challenge_auth("Password:")
        sent = b64(password) if isinstance(password, bytes) else ""
        user = args[1] if len(args) > 1 else ""
        return AuthResult(
            success=False, handled=False, message=f"535 5.7.8 no user {user} with {sent}"
        )


@contextmanager
def smtp_handler(handler: object, **options: Any) -> Iterator[int]:
    """A real aiosmtpd server running ``handler`` on a free port; yields the port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    controller = _Controller(handler, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@pytest.mark.parametrize(
    ("mechanism", "quoted"),
    [
        ("PLAIN", [b64(b"\0herald\0" + PASSWORD.encode())]),
        ("LOGIN", [b64(b"herald"), b64(PASSWORD.encode())]),
    ],
)
def test_a_535_quoting_the_auth_argument_is_masked(mechanism: str, quoted: list[str]) -> None:
    other = "LOGIN" if mechanism == "PLAIN" else "PLAIN"
    with (
        smtp_handler(EchoAuth(), auth_require_tls=False, auth_exclude_mechanism=[other]) as port,
        closing(make_adapter(port)) as adapter,
    ):
        exc = support.fail(adapter, outbound(email()), secrets=[PASSWORD, *quoted], send=send)
    assert type(exc) is AuthFailed
    assert exc.provider_code == "535"
    assert exc.message.startswith("smtp auth: 535 5.7.8 ")
    assert exc.message.count(MASK) == len(quoted)


# --- the session's overall deadline -----------------------------------------------------------


class SlowRcpt:
    """An SMTP handler that takes ``seconds`` to answer RCPT (each reply within the timeout)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        await asyncio.sleep(self.seconds)
        envelope.rcpt_tos.append(address)
        return "250 OK"


def test_a_session_past_its_deadline_after_data_is_cut_and_in_doubt(server: SmtpServer) -> None:
    server.stall_next(5)  # DATA answers after 5 s: under the 60 s command timeout
    with closing(make_adapter(server.port, deadline_s=1.0)) as adapter:
        began = time.monotonic()
        exc = fail(adapter, outbound(email()))
        took = time.monotonic() - began
    assert 1.0 <= took < 1.5
    assert type(exc) is ProviderUnavailable
    assert exc.in_doubt  # the message was written: the server may have queued it
    assert exc.message == "smtp data: no answer within the 1 s deadline for the session"


def test_a_session_past_its_deadline_before_data_is_not_in_doubt() -> None:
    with (
        smtp_handler(SlowRcpt(3)) as port,
        closing(make_adapter(port, username=None, password=None, deadline_s=0.5)) as adapter,
    ):
        began = time.monotonic()
        exc = fail(adapter, outbound(email()))
        took = time.monotonic() - began
    assert 0.5 <= took < 1.0
    assert type(exc) is ProviderUnavailable
    assert not exc.in_doubt
    assert exc.message == "smtp rcpt: no answer within the 0.5 s deadline for the session"


def test_attachment_downloads_count_against_the_sessions_deadline(
    server: SmtpServer, files: Sandbox
) -> None:
    # Three downloads of 0.4 s each, each within any per-download limit: 1 s for the part
    # is over before the session starts, so the message is never sent.
    files.delay(0.4)
    message = email(
        attachments=[
            Attachment(url=f"{files.url}/files/invoice.pdf", kind="file"),
            Attachment(url=f"{files.url}/files/photo.jpg", kind="image"),
            Attachment(url=f"{files.url}/files/photo.jpg", kind="image"),
        ]
    )
    with closing(make_adapter(server.port, deadline_s=1.0)) as adapter:
        began = time.monotonic()
        exc = fail(adapter, outbound(message))
        took = time.monotonic() - began
    assert took < 2
    assert type(exc) is ProviderUnavailable
    assert not exc.in_doubt  # nothing reached the SMTP server
    assert server.messages == []
