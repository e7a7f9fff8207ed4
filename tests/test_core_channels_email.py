"""Email jobs (SMTP and SendGrid) through the send core, to the local SMTP server and the
sandbox: rendering, sanitised HTML, the plain part, attachments, a refused recipient."""

from __future__ import annotations

import base64
import uuid
from typing import Any

from herald.testing.sandbox import Sandbox
from herald.testing.sandbox.files import file_bytes
from tests.conftest import Core, make_job, sandbox_requests
from tests.smtp_server import Received, SmtpServer

NOTE = "<b>bold</b> & co"


def address() -> str:
    return f"ana-{uuid.uuid4().hex[:8]}@example.com"


def delivered(server: SmtpServer, recipient: str) -> Received:
    """The one email the server accepted for ``recipient`` (it keeps it before it answers)."""
    [found] = [m for m in server.messages if m.rcpt_tos == [recipient]]
    return found


def text_of(received: Received, kind: str) -> str:
    part = received.message.get_body(preferencelist=(kind,))
    assert part is not None and part.get_content_type() == f"text/{kind}"
    return str(part.get_content()).replace("\r\n", "\n").removesuffix("\n")


def email_job(channel: str, recipient: str, sandbox: Sandbox) -> dict[str, Any]:
    job = make_job([{"channel_id": channel, "identifier": recipient}], failure_branch=True)
    job["variables"] = {"trigger": {"order_id": "A-17", "note": NOTE}}
    job["channel_responses"] = {
        channel: {
            "type": "email",
            "subject": "Order $trigger.order_id for $contact.firstname",
            "html": '<p onclick="steal()">Hi $contact.firstname, ${trigger.note}</p>'
            "<script>alert(1)</script>",
            "attachments": [
                {"url": f"{sandbox.url}/files/777/invoice.pdf", "kind": "file"},
            ],
        }
    }
    return job


def test_email_response_through_smtp(core: Core, sandbox: Sandbox, smtp_server: SmtpServer) -> None:
    recipient = address()
    event = core.send(email_job("mail", recipient, sandbox))

    assert (event.event, event.data.channel_id, event.data.channel_type) == (
        "message.sent",
        "mail",
        "email_smtp",
    )
    got = delivered(smtp_server, recipient)
    msg = got.message
    assert event.data.provider_message_ids == [msg["Message-ID"]]
    assert event.data.attempts == 1
    assert got.login == "herald"
    assert msg["Subject"] == "Order A-17 for Ana"
    assert text_of(got, "html") == "<p>Hi Ana, &lt;b&gt;bold&lt;/b&gt; &amp; co</p>"
    assert text_of(got, "plain") == f"Hi Ana, {NOTE}"
    [attachment] = msg.iter_attachments()
    assert (attachment.get_filename(), attachment.get_content_type()) == (
        "invoice.pdf",
        "application/pdf",
    )
    assert attachment.get_payload(decode=True) == file_bytes("invoice.pdf", 777)


def test_email_response_through_sendgrid(core: Core, sandbox: Sandbox) -> None:
    recipient = address()
    event = core.send(email_job("sg", recipient, sandbox))

    assert (event.event, event.data.channel_type) == ("message.sent", "sendgrid")
    [body] = [
        b
        for b in sandbox_requests(sandbox, "sendgrid", subject="Order A-17 for Ana")
        if b["personalizations"] == [{"to": [{"email": recipient}]}]
    ]
    assert body["from"] == {"email": "shop@herald.test"}
    assert body["content"] == [
        {"type": "text/plain", "value": f"Hi Ana, {NOTE}"},
        {"type": "text/html", "value": "<p>Hi Ana, &lt;b&gt;bold&lt;/b&gt; &amp; co</p>"},
    ]
    assert body["attachments"] == [
        {
            "content": base64.b64encode(file_bytes("invoice.pdf", 777)).decode(),
            "type": "application/pdf",
            "filename": "invoice.pdf",
            "disposition": "attachment",
        }
    ]
    [message_id] = event.data.provider_message_ids
    assert message_id.startswith("sandbox-sg-")


def test_default_text_on_an_email_channel(core: Core, smtp_server: SmtpServer) -> None:
    recipient = address()
    job = make_job([{"channel_id": "mail", "identifier": recipient}])
    job["message"] = {
        "type": "text",
        "text": "🧑🏽‍🚀 Hi $contact.firstname, how was it?",
        "quick_replies": [{"title": "Great", "payload": "5"}, {"title": "Bad", "payload": "1"}],
    }
    event = core.send(job)

    assert event.event == "message.sent"
    got = delivered(smtp_server, recipient)
    assert got.message["Subject"] == ""
    assert got.message.get_content_type() == "text/plain"
    assert text_of(got, "plain") == "🧑🏽‍🚀 Hi Ana, how was it?\n\n1. Great\n2. Bad"


def test_a_refused_recipient_fails_the_job(core: Core, smtp_server: SmtpServer) -> None:
    recipient = address()
    job = make_job([{"channel_id": "mail", "identifier": recipient}], failure_branch=True)
    smtp_server.fail_next(550, "5.1.1 no such mailbox", at="rcpt")
    event = core.send(job)

    assert (event.event, event.data.next, event.data.attempts) == ("message.failed", "failure", 1)
    assert event.data.error is not None
    assert event.data.error.model_dump() == {
        "code": "recipient_unavailable",
        "retryable": False,
        "message": "smtp rcpt: 550 5.1.1 no such mailbox",
        "provider_code": "550",
    }
    assert [m for m in smtp_server.messages if recipient in m.rcpt_tos] == []
