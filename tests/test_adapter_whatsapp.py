"""WhatsAppAdapter against the sandbox's WhatsApp Cloud API, over real HTTP."""

from __future__ import annotations

from functools import partial
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from herald.adapters.http import ClientPool
from herald.adapters.meta.graph import GRAPH_VERSION
from herald.adapters.meta.whatsapp import ERRORS, WhatsAppAdapter
from herald.config import WhatsAppChannel
from herald.contract.errors import (
    AuthFailed,
    InvalidContent,
    ProviderUnavailable,
    QuotaExceeded,
    RateLimited,
    RecipientUnavailable,
    SendError,
    WindowClosed,
)
from herald.contract.job import (
    Attachment,
    CustomPayload,
    EmailMessage,
    MediaMessage,
    MessengerTemplate,
    QuickReply,
    WhatsAppTemplate,
)
from herald.testing.sandbox import Sandbox
from tests import adapter_support as support
from tests.adapter_support import (
    FAMILY,
    SHARED_SSL,
    Row,
    adapter_fixture,
    sandbox_fixture,
    send,
    text,
    wire,
)

TOKEN = "EAAG-whatsapp-test-token-s3cr3t"
PHONE_ID = "106540352242922"
PATH = f"/{GRAPH_VERSION}/{PHONE_ID}/messages"
BASE = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "351911111111"}

sandbox = sandbox_fixture(whatsapp=TOKEN)


def make_adapter(base_url: str) -> WhatsAppAdapter:
    channel = WhatsAppChannel(
        id="wa",
        type="whatsapp",
        phone_number_id=PHONE_ID,
        access_token=SecretStr(TOKEN),
        base_url=base_url,
    )
    return WhatsAppAdapter(channel, ClientPool(ssl_context=SHARED_SSL))


adapter = adapter_fixture(make_adapter)
outbound = partial(support.outbound, channel_id="wa", recipient="+351 911 111 111")


def replies(n: int, title: str = "Option") -> list[QuickReply]:
    return [QuickReply(title=f"{title} {i}", payload=f"opt-{i}") for i in range(1, n + 1)]


# -- what each message type becomes on the wire ---------------------------------------


def test_text_bytes_path_and_bearer(sandbox: Sandbox, adapter: WhatsAppAdapter) -> None:
    assert send(adapter, outbound(text())) == ["wamid.sandbox.1"]
    [seen] = sandbox.requests
    assert (seen.method, seen.path, seen.provider) == ("POST", PATH, "whatsapp")
    assert seen.headers["authorization"] == f"Bearer {TOKEN}"
    assert seen.headers["content-type"] == "application/json"
    assert seen.body == wire(
        {**BASE, "type": "text", "text": {"body": FAMILY, "preview_url": False}}
    )
    assert FAMILY.encode() in seen.body  # emoji as UTF-8, not \u escapes


def test_three_quick_replies_are_reply_buttons(sandbox: Sandbox, adapter: WhatsAppAdapter) -> None:
    menu = [QuickReply(title="Yes 👍"), QuickReply(title="No", payload="answer-no")]
    menu.append(QuickReply(title="x" * 20, payload="i" * 256))
    send(adapter, outbound(text("Confirm?", quick_replies=menu)))
    assert sandbox.requests[0].body == wire(
        {
            **BASE,
            "type": "interactive",
            "interactive": {
                "type": "button",
                "body": {"text": "Confirm?"},
                "action": {
                    "buttons": [
                        {"type": "reply", "reply": {"id": "Yes 👍", "title": "Yes 👍"}},
                        {"type": "reply", "reply": {"id": "answer-no", "title": "No"}},
                        {"type": "reply", "reply": {"id": "i" * 256, "title": "x" * 20}},
                    ]
                },
            },
        }
    )


def test_four_to_ten_quick_replies_are_a_list(sandbox: Sandbox, adapter: WhatsAppAdapter) -> None:
    send(adapter, outbound(text("Pick one", quick_replies=replies(4))))
    send(adapter, outbound(text("Pick one", quick_replies=replies(10, "x" * 15))))
    first, ten = (r.json() for r in sandbox.requests)
    assert first["interactive"] == {
        "type": "list",
        "body": {"text": "Pick one"},
        "action": {
            "button": "Choose",
            "sections": [
                {"rows": [{"id": f"opt-{i}", "title": f"Option {i}"} for i in range(1, 5)]}
            ],
        },
    }
    assert len(ten["interactive"]["action"]["sections"][0]["rows"]) == 10


def test_media_is_one_message_per_attachment_in_order(
    sandbox: Sandbox, adapter: WhatsAppAdapter
) -> None:
    media = MediaMessage(
        type="media",
        attachments=[
            Attachment(url="https://files.example/a.jpg", kind="image", caption=FAMILY),
            Attachment(
                url="https://files.example/i.pdf", kind="file", filename="i.pdf", caption="Invoice"
            ),
            Attachment(url="https://files.example/v.mp4", kind="video", filename="ignored.mp4"),
            Attachment(url="https://files.example/s.ogg", kind="audio"),
        ],
    )
    out = outbound(media)
    parts = adapter.plan(out)
    assert [p.index for p in parts] == [0, 1, 2, 3]
    sent = [adapter.send_part(out, p) for p in parts]
    assert sent == [[f"wamid.sandbox.{i}"] for i in range(1, 5)]
    assert [r.body for r in sandbox.requests] == [
        wire(
            {
                **BASE,
                "type": "image",
                "image": {"link": "https://files.example/a.jpg", "caption": FAMILY},
            }
        ),
        wire(
            {
                **BASE,
                "type": "document",
                "document": {
                    "link": "https://files.example/i.pdf",
                    "caption": "Invoice",
                    "filename": "i.pdf",
                },
            }
        ),
        wire({**BASE, "type": "video", "video": {"link": "https://files.example/v.mp4"}}),
        wire({**BASE, "type": "audio", "audio": {"link": "https://files.example/s.ogg"}}),
    ]


def test_template_is_sent_with_its_rendered_components(
    sandbox: Sandbox, adapter: WhatsAppAdapter
) -> None:
    components: list[dict[str, Any]] = [
        {
            "type": "header",
            "parameters": [{"type": "image", "image": {"link": "https://x.example/h.png"}}],
        },
        {
            "type": "body",
            "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "A-17"}],
        },
        {
            "type": "button",
            "sub_type": "quick_reply",
            "index": "0",
            "parameters": [{"type": "payload", "payload": "stop"}],
        },
    ]
    template = WhatsAppTemplate(
        type="whatsapp_template", name="order_update", language="en_US", components=components
    )
    assert send(adapter, outbound(template)) == ["wamid.sandbox.1"]
    assert sandbox.requests[0].body == wire(
        {
            **BASE,
            "type": "template",
            "template": {
                "name": "order_update",
                "language": {"code": "en_US"},
                "components": components,
            },
        }
    )
    bare = WhatsAppTemplate(type="whatsapp_template", name="hello_world", language="en_US")
    send(adapter, outbound(bare))
    assert sandbox.requests[1].json()["template"] == {
        "name": "hello_world",
        "language": {"code": "en_US"},
    }


def test_custom_payload_is_merged_over_the_base_body(
    sandbox: Sandbox, adapter: WhatsAppAdapter
) -> None:
    payload: dict[str, Any] = {"type": "sticker", "sticker": {"link": "https://x.example/s.webp"}}
    send(adapter, outbound(CustomPayload(type="custom_payload", payload=payload)))
    assert sandbox.requests[0].body == wire({**BASE, **payload})


# -- limits: invalid_content before any request ---------------------------------------


@pytest.mark.parametrize(
    ("message", "fragment"),
    [
        (text("é" * 4097), "whatsapp text is 4097 characters; the limit is 4096"),
        (text("x" * 1025, quick_replies=replies(2)), "interactive body) is 1025 characters"),
        (text("hi", quick_replies=replies(11)), "quick replies are 11; the limit is 10"),
        (text("hi", quick_replies=[QuickReply(title="x" * 21)]), "reply button title is 21"),
        (text("hi", quick_replies=[QuickReply(title="a", payload="i" * 257)]), "button id is 257"),
        (text("hi", quick_replies=replies(4, "y" * 23)), "list row title is 25 characters"),
        (
            MediaMessage(
                type="media",
                attachments=[
                    Attachment(url="https://x.example/a.jpg", kind="image"),
                    Attachment(url="https://x.example/a.ogg", kind="audio", caption="listen"),
                ],
            ),
            "whatsapp audio cannot carry a caption",
        ),
        (
            MediaMessage(
                type="media",
                attachments=[
                    Attachment(url="https://x.example/a.jpg", kind="image", caption="c" * 1025)
                ],
            ),
            "whatsapp caption is 1025 characters; the limit is 1024",
        ),
        (
            WhatsAppTemplate(
                type="whatsapp_template",
                name="t",
                language="en",
                components=[{"type": "body", "parameters": [{"type": "text", "text": "p" * 1025}]}],
            ),
            "template text parameter is 1025 characters; the limit is 1024",
        ),
        (
            CustomPayload(
                type="custom_payload", payload={"type": "text", "text": {"body": "z" * 4097}}
            ),
            "whatsapp text is 4097",
        ),
        (EmailMessage(type="email", subject="s", html="<p>x</p>"), "cannot send email"),
        (
            MessengerTemplate(
                type="messenger_template", payload={"template_type": "generic", "elements": []}
            ),
            "cannot send messenger_template",
        ),
    ],
)
def test_limits_are_invalid_content_before_any_request(
    sandbox: Sandbox, adapter: WhatsAppAdapter, message: Any, fragment: str
) -> None:
    with pytest.raises(InvalidContent) as caught:
        adapter.plan(outbound(message))
    assert fragment in str(caught.value)
    assert caught.value.provider_code is None
    assert sandbox.requests == []


def test_texts_at_the_limits_are_sent(sandbox: Sandbox, adapter: WhatsAppAdapter) -> None:
    send(adapter, outbound(text("é" * 4096)))
    send(adapter, outbound(text("b" * 1024, quick_replies=replies(3))))
    assert [r.json()["type"] for r in sandbox.requests] == ["text", "interactive"]


def test_a_recipient_that_is_not_a_phone_number_is_refused(
    sandbox: Sandbox, adapter: WhatsAppAdapter
) -> None:
    with pytest.raises(RecipientUnavailable):
        adapter.plan(outbound(text(), recipient="ana@example.com"))
    assert sandbox.requests == []


def test_the_sandbox_itself_refuses_what_meta_refuses(sandbox: Sandbox) -> None:
    url = sandbox.url + PATH
    auth = {"authorization": f"Bearer {TOKEN}"}
    with httpx.Client() as client:
        long = client.post(
            url, headers=auth, json={**BASE, "type": "text", "text": {"body": "x" * 4097}}
        )
        audio = client.post(
            url,
            headers=auth,
            json={**BASE, "type": "audio", "audio": {"link": "https://a", "caption": "c"}},
        )
        no_auth = client.post(url, json={**BASE, "type": "text", "text": {"body": "x"}})
    assert (long.status_code, long.json()["error"]["code"]) == (400, 100)
    assert "4096" in long.json()["error"]["error_data"]["details"]
    assert (audio.status_code, audio.json()["error"]["code"]) == (400, 100)
    assert (no_auth.status_code, no_auth.json()["error"]["code"]) == (401, 190)


# -- errors ------------------------------------------------------------------------

#: docs/channels/whatsapp.md#errors: every Graph code and the Herald error it must become.
DOCUMENTED: dict[int, type[SendError]] = {
    **dict.fromkeys([0, 190, 3, 10, *range(200, 300), 131031, 131042, 368], AuthFailed),
    **dict.fromkeys([131021, 131026, 131049, 133010], RecipientUnavailable),
    131047: WindowClosed,
    **dict.fromkeys(
        [100, 131008, 131009, 131051, 131052, 131053, *range(132000, 132017), 135000],
        InvalidContent,
    ),
    **dict.fromkeys([4, 80007, 130429, 131056], RateLimited),
    131048: QuotaExceeded,
    **dict.fromkeys([1, 2, 131000, 131016, 131057, 133004], ProviderUnavailable),
}


def test_the_table_is_the_documented_one() -> None:
    assert dict(ERRORS) == DOCUMENTED


def graph_body(
    code: int, message: str = "Something happened", subcode: int | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {
        "message": f"(#{code}) {message}",
        "type": "OAuthException",
        "code": code,
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    error["error_data"] = {"messaging_product": "whatsapp", "details": "Details here"}
    error["fbtrace_id"] = "AbCdEf123"
    return {"error": error}


def code_row(error: type[SendError], code: int, status: int = 400, **expect: Any) -> Row:
    return Row(error, str(code), status, graph_body(code), **expect)


#: One row per outcome of the table, the sandbox's special recipients, and odd answers.
ANSWERS = [
    Row(
        WindowClosed,
        "131047",
        400,
        # A subcode the table does not name: the code decides, and is what is reported.
        graph_body(131047, subcode=2494010),
        message="whatsapp: (#131047) Something happened (Details here) [fbtrace_id AbCdEf123]",
    ),
    code_row(AuthFailed, 190, 401),
    code_row(AuthFailed, 250),
    code_row(RecipientUnavailable, 131021),
    code_row(InvalidContent, 132000),
    code_row(QuotaExceeded, 131048),  # a quota, not retried
    code_row(RateLimited, 130429, 429, headers={"Retry-After": "7"}, retry_after=7),
    code_row(ProviderUnavailable, 1),  # Meta's transient codes on a 400: a refusal
    code_row(ProviderUnavailable, 2, 503, in_doubt=True),
    *(
        Row(error, to[1:], to=to, in_doubt=in_doubt)
        for to, error, in_doubt in [
            ("0131047", WindowClosed, False),
            ("0131026", RecipientUnavailable, False),
            ("0133010", RecipientUnavailable, False),
            ("0131048", QuotaExceeded, False),
            ("0130429", RateLimited, False),
            ("0131056", RateLimited, False),
            ("0368", AuthFailed, False),
            ("0131000", ProviderUnavailable, True),
            ("0133004", ProviderUnavailable, True),
        ]
    ),
    # Unknown codes and answers without a Graph error: by HTTP status.
    code_row(InvalidContent, 99999),
    code_row(AuthFailed, 99999, 403),
    code_row(RateLimited, 99999, 429),
    code_row(ProviderUnavailable, 99999, 500, in_doubt=True),
    Row(ProviderUnavailable, "502", 502, "<html>Bad Gateway</html>", in_doubt=True),
    Row(InvalidContent, "400", 400, {"error": "nope"}, message="whatsapp: HTTP 400"),
    Row(ProviderUnavailable, "200", 200, {"messaging_product": "whatsapp"}, in_doubt=True),
]


@pytest.mark.parametrize("row", support.rows(ANSWERS))
def test_whatsapp_answers_become_errors(
    sandbox: Sandbox, adapter: WhatsAppAdapter, row: Row
) -> None:
    out = outbound(text(), recipient=row.to or "+351 911 111 111")
    support.answer_row(sandbox, "whatsapp", adapter, out, row, secrets=[TOKEN])
