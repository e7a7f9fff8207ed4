"""SendGridAdapter against the sandbox's SendGrid v3 mail send, over real HTTP."""

from __future__ import annotations

import base64
import time
from functools import partial
from typing import Any

import pytest
from pydantic import SecretStr

from herald.adapters.email.message import message_id, thread_id
from herald.adapters.email.sendgrid import WHAT, SendGridAdapter
from herald.adapters.http import ClientPool
from herald.config import SendGridChannel
from herald.contract.errors import (
    AuthFailed,
    InvalidContent,
    ProviderUnavailable,
    RateLimited,
)
from herald.contract.job import (
    Attachment,
    CustomPayload,
    EmailMessage,
    MessengerTemplate,
    QuickReply,
    TextMessage,
    WhatsAppTemplate,
    Workflow,
)
from herald.testing.sandbox import Sandbox
from herald.testing.sandbox.files import file_bytes
from herald.testing.sandbox.server import FLOOD_RETRY_AFTER
from tests import adapter_support as support
from tests.adapter_support import LOOPBACK, SHARED_SSL, Row, adapter_fixture, sandbox_fixture, text
from tests.adapter_support import SHORT_FAMILY as FAMILY
from tests.adapter_support import send_one as send

KEY = "SG.test-key-id.test-key-secret-value"

sandbox = sandbox_fixture(sendgrid=KEY)


def make_adapter(base_url: str) -> SendGridAdapter:
    channel = SendGridChannel(
        id="sg",
        type="sendgrid",
        api_key=SecretStr(KEY),
        from_address="Herald Shop <shop@herald.test>",
        base_url=base_url,
    )
    return SendGridAdapter(
        channel, ClientPool(ssl_context=SHARED_SSL), fetch_allow_networks=LOOPBACK
    )


adapter = adapter_fixture(make_adapter)
outbound = partial(
    support.outbound,
    channel_id="sg",
    recipient="ana@example.com",
    job_id="run-1:s1",
    workflow=Workflow(workflow_id="wf-1"),
)
SECRETS = [KEY, "test-key-secret"]
fail = partial(support.fail, secrets=SECRETS, send=send)


def mail_requests(box: Sandbox) -> list[Any]:
    return [r for r in box.requests if r.provider == "sendgrid"]


THREAD = {
    "Message-ID": message_id("run-1:s1", "herald.test"),
    "In-Reply-To": thread_id("wf-1", "c-1", "herald.test"),
    "References": thread_id("wf-1", "c-1", "herald.test"),
}


# --- success ----------------------------------------------------------------------------------


def test_email_request_bytes(sandbox: Sandbox, adapter: SendGridAdapter) -> None:
    attachment = Attachment(url=f"{sandbox.url}/files/300/invoice.pdf", kind="file")
    message = EmailMessage(
        type="email",
        subject=f"Order {FAMILY}",
        html='<p onclick="x()">Hi <b>Ana</b></p><script>alert(1)</script>',
        attachments=[attachment],
    )

    ids = send(adapter, outbound(message))

    [request] = mail_requests(sandbox)
    assert ids == ["sandbox-sg-00000001"]
    assert (request.method, request.path) == ("POST", "/v3/mail/send")
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["content-type"] == "application/json"
    assert FAMILY.encode() in request.body  # UTF-8, not \\u escapes
    assert request.json() == {
        "personalizations": [{"to": [{"email": "ana@example.com"}]}],
        "from": {"email": "shop@herald.test", "name": "Herald Shop"},
        "subject": f"Order {FAMILY}",
        "content": [
            {"type": "text/plain", "value": "Hi Ana"},
            {"type": "text/html", "value": "<p>Hi <b>Ana</b></p>"},
        ],
        "headers": THREAD,
        "attachments": [
            {
                "content": base64.b64encode(file_bytes("invoice.pdf", 300)).decode(),
                "type": "application/pdf",
                "filename": "invoice.pdf",
                "disposition": "attachment",
            }
        ],
        # The Event Webhook reports it back on every event (docs/webhooks.md#sendgrid).
        "custom_args": {"job_id": "run-1:s1"},
    }


def test_default_text_is_plain_content_with_a_menu(
    sandbox: Sandbox, adapter: SendGridAdapter
) -> None:
    message = TextMessage(
        type="text",
        text="Pick one",
        quick_replies=[QuickReply(title="Yes"), QuickReply(title="No")],
    )
    send(adapter, outbound(message))
    body = mail_requests(sandbox)[0].json()
    # SendGrid refuses an empty subject: Herald's empty subject goes as one space.
    assert body["subject"] == " "
    assert body["content"] == [{"type": "text/plain", "value": "Pick one\n\n1. Yes\n2. No"}]
    assert "attachments" not in body


def test_custom_payload_is_merged_over_the_body(sandbox: Sandbox, adapter: SendGridAdapter) -> None:
    payload = {
        "subject": "Raw",
        "content": [{"type": "text/html", "value": "<p>raw</p>"}],
        "template_id": "d-123",
        "from": {"email": "other@herald.test"},
    }
    send(adapter, outbound(CustomPayload(type="custom_payload", payload=payload)))
    assert mail_requests(sandbox)[0].json() == {
        "personalizations": [{"to": [{"email": "ana@example.com"}]}],
        **payload,
        "custom_args": {"job_id": "run-1:s1"},
    }


@pytest.mark.parametrize(
    "message",
    [
        WhatsAppTemplate(type="whatsapp_template", name="t", language="en"),
        MessengerTemplate(type="messenger_template", payload={"template_type": "generic"}),
    ],
    ids=["whatsapp_template", "messenger_template"],
)
def test_unsupported_types_are_invalid_content(adapter: SendGridAdapter, message: Any) -> None:
    with pytest.raises(InvalidContent, match=f"sendgrid cannot send {message.type}"):
        adapter.plan(outbound(message))


def test_a_message_of_30_mb_is_refused_before_sending(
    sandbox: Sandbox, adapter: SendGridAdapter
) -> None:
    size = 8 * 1024 * 1024  # three of them: 24 MB, within the attachment caps; 32 MB in base64
    attachments = [
        Attachment(url=f"{sandbox.url}/files/{size}/part{i}.bin", kind="file") for i in range(3)
    ]
    error = fail(adapter, outbound(EmailMessage(type="email", html="x", attachments=attachments)))
    assert isinstance(error, InvalidContent)
    assert "it must be under 30 MB" in error.message
    assert mail_requests(sandbox) == []


# --- errors -----------------------------------------------------------------------------------


def sg_error(message: str, field: str | None = None) -> dict[str, Any]:
    return {"errors": [{"message": message, "field": field, "help": None}]}


UNVERIFIED = sg_error("The from address is not verified.", "from")
SAID = "The from address is not verified. (field from)"
#: SendGrid has no codes beyond HTTP: its table is the status rule
#: (docs/channels/sendgrid.md#errors-and-retries).
ANSWERS = [
    *(
        Row(error, str(status), status, UNVERIFIED, message=f"{WHAT}: HTTP {status}: {SAID}")
        for status, error in [
            (400, InvalidContent),
            (413, InvalidContent),
            (404, InvalidContent),  # any other 4xx
            (401, AuthFailed),
            (403, AuthFailed),
        ]
    ),
    *(
        Row(ProviderUnavailable, str(status), status, UNVERIFIED, in_doubt=True)
        for status in (500, 503, 502)  # 502: any other 5xx
    ),
    Row(ProviderUnavailable, "502", 502, "", in_doubt=True, message=f"{WHAT}: HTTP 502"),
    # The wait is X-RateLimit-Reset minus now: at most the sandbox's flood wait.
    Row(
        RateLimited,
        "429",
        to="flood@herald.test",
        retry_after=pytest.approx(FLOOD_RETRY_AFTER / 2, abs=FLOOD_RETRY_AFTER / 2),
    ),
    Row(RateLimited, "429", 429, sg_error("rate"), headers={"Retry-After": "7"}, retry_after=7),
]


@pytest.mark.parametrize("row", support.rows(ANSWERS))
def test_sendgrid_answers_become_errors(
    sandbox: Sandbox, adapter: SendGridAdapter, row: Row
) -> None:
    out = outbound(text("hi"), recipient=row.to or "ana@example.com")
    support.answer_row(sandbox, "sendgrid", adapter, out, row, secrets=SECRETS, send=send)


def test_429_waits_until_x_ratelimit_reset(sandbox: Sandbox, adapter: SendGridAdapter) -> None:
    reset = int(time.time()) + 30
    sandbox.fail_next("sendgrid", 429, sg_error("rate"), headers={"X-RateLimit-Reset": str(reset)})
    error = fail(adapter, outbound(text("hi")))
    assert isinstance(error, RateLimited)
    assert error.retry_after is not None and 27 <= error.retry_after <= 30


def test_429_with_a_past_reset_waits_zero(sandbox: Sandbox, adapter: SendGridAdapter) -> None:
    past = str(int(time.time()) - 100)
    sandbox.fail_next("sendgrid", 429, sg_error("rate"), headers={"X-RateLimit-Reset": past})
    error = fail(adapter, outbound(text("hi")))
    assert isinstance(error, RateLimited) and error.retry_after == 0.0


@pytest.mark.parametrize(
    ("payload", "said"),
    [
        ({"subject": ""}, "The subject is required."),
        (
            {
                "content": [
                    {"type": "text/html", "value": "<p>x</p>"},
                    {"type": "text/plain", "value": "x"},
                ]
            },
            "The text/plain content type must be first",
        ),
        (
            {
                "content": [{"type": "text/plain", "value": "x"}],
                "attachments": [{"content": "not base64!", "filename": "a.pdf"}],
            },
            "The attachment content must be base64 encoded. (field attachments.0.content)",
        ),
    ],
    ids=["empty-subject", "html-first", "bad-base64"],
)
def test_sandbox_validation_errors_are_invalid_content(
    adapter: SendGridAdapter, payload: dict[str, Any], said: str
) -> None:
    body = {"subject": "s", "content": [{"type": "text/plain", "value": "x"}], **payload}
    error = fail(adapter, outbound(CustomPayload(type="custom_payload", payload=body)))
    assert isinstance(error, InvalidContent)
    assert error.provider_code == "400"
    assert said in error.message
