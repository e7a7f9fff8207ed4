"""MessengerAdapter and InstagramAdapter against the sandbox's Send API, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from herald.adapters.answers import classify
from herald.adapters.http import ClientPool
from herald.adapters.masking import Mask
from herald.adapters.meta.graph import GRAPH_VERSION, read
from herald.adapters.meta.instagram import InstagramAdapter
from herald.adapters.meta.messenger import ERRORS, MessengerAdapter, SendApiAdapter
from herald.config import InstagramChannel, MessengerChannel
from herald.contract.errors import (
    AuthFailed,
    InvalidContent,
    ProviderUnavailable,
    RateLimited,
    RecipientUnavailable,
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

FB_TOKEN = "EAAG-page-token-s3cr3t"
IG_TOKEN = "IGQV-ig-token-s3cr3t"
PAGE_ID = "1100223344"
IG_ID = "17841400000000001"
PSID = "6754123456789012"
HEAD = {"recipient": {"id": PSID}, "messaging_type": "RESPONSE"}
GENERIC = {
    "template_type": "generic",
    "elements": [
        {"title": "Order A-17", "subtitle": "Shipped", "image_url": "https://x.example/i.png"}
    ],
}
WEB_URL = {"type": "web_url", "url": "https://shop.example/t", "title": "Track"}
BUTTON = {"template_type": "button", "text": "Track your order?", "buttons": [WEB_URL]}


sandbox = sandbox_fixture(messenger=FB_TOKEN, instagram=IG_TOKEN)


def make_messenger(base_url: str) -> MessengerAdapter:
    channel = MessengerChannel(
        id="fb",
        type="messenger",
        page_id=PAGE_ID,
        page_access_token=SecretStr(FB_TOKEN),
        base_url=base_url,
    )
    return MessengerAdapter(channel, ClientPool(ssl_context=SHARED_SSL))


def make_instagram(base_url: str) -> InstagramAdapter:
    channel = InstagramChannel(
        id="ig",
        type="instagram",
        page_id=IG_ID,
        access_token=SecretStr(IG_TOKEN),
        base_url=base_url,
    )
    return InstagramAdapter(channel, ClientPool(ssl_context=SHARED_SSL))


fb = adapter_fixture(make_messenger)
ig = adapter_fixture(make_instagram)


@pytest.fixture(params=["messenger", "instagram"])
def any_adapter(request: pytest.FixtureRequest, sandbox: Sandbox) -> Iterator[SendApiAdapter]:
    adapter: SendApiAdapter = (
        make_messenger(sandbox.url) if request.param == "messenger" else make_instagram(sandbox.url)
    )
    yield adapter
    adapter.close()


outbound = partial(support.outbound, channel_id="fb", recipient=PSID)


# -- Messenger on the wire ------------------------------------------------------------


def test_messenger_text_bytes_and_token_in_query_redacted(
    sandbox: Sandbox, fb: MessengerAdapter
) -> None:
    assert send(fb, outbound(text())) == ["m_sandbox-messenger-1"]
    [seen] = sandbox.requests
    assert seen.provider == "messenger"
    assert seen.path == f"/{GRAPH_VERSION}/me/messages?access_token=<token>"
    assert FB_TOKEN not in seen.path
    assert "authorization" not in seen.headers
    assert seen.body == wire({**HEAD, "message": {"text": FAMILY}})


def test_messenger_quick_replies(sandbox: Sandbox, fb: MessengerAdapter) -> None:
    menu = [QuickReply(title="Yes 👍"), QuickReply(title="x" * 20, payload="p" * 1000)]
    send(fb, outbound(text("Confirm?", quick_replies=menu)))
    assert sandbox.requests[0].body == wire(
        {
            **HEAD,
            "message": {
                "text": "Confirm?",
                "quick_replies": [
                    {"content_type": "text", "title": "Yes 👍", "payload": "Yes 👍"},
                    {"content_type": "text", "title": "x" * 20, "payload": "p" * 1000},
                ],
            },
        }
    )


def test_a_message_tag_becomes_messaging_type_message_tag(
    sandbox: Sandbox, fb: MessengerAdapter
) -> None:
    send(fb, outbound(text("Agent here", message_tag="HUMAN_AGENT")))
    send(fb, outbound(text("Your order shipped", message_tag="POST_PURCHASE_UPDATE")))
    first, second = (r.json() for r in sandbox.requests)
    assert first == {
        "recipient": {"id": PSID},
        "messaging_type": "MESSAGE_TAG",
        "tag": "HUMAN_AGENT",
        "message": {"text": "Agent here"},
    }
    assert (second["messaging_type"], second["tag"]) == ("MESSAGE_TAG", "POST_PURCHASE_UPDATE")


def test_media_is_one_attachment_per_message_and_captions_follow_as_text(
    sandbox: Sandbox, fb: MessengerAdapter
) -> None:
    media = MediaMessage(
        type="media",
        attachments=[
            Attachment(url="https://files.example/a.jpg", kind="image", caption=FAMILY),
            Attachment(url="https://files.example/i.pdf", kind="file", filename="i.pdf"),
            Attachment(url="https://files.example/v.mp4", kind="video"),
            Attachment(url="https://files.example/s.mp3", kind="audio", caption="Listen"),
        ],
        message_tag="HUMAN_AGENT",
    )
    out = outbound(media)
    parts = fb.plan(out)
    assert [p.index for p in parts] == [0, 1, 2, 3, 4, 5]
    assert [fb.send_part(out, p) for p in parts] == [
        [f"m_sandbox-messenger-{i}"] for i in range(1, 7)
    ]
    head = {"recipient": {"id": PSID}, "messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}

    def attachment(kind: str, url: str) -> bytes:
        payload = {"url": url, "is_reusable": True}
        return wire({**head, "message": {"attachment": {"type": kind, "payload": payload}}})

    assert [r.body for r in sandbox.requests] == [
        attachment("image", "https://files.example/a.jpg"),
        wire({**head, "message": {"text": FAMILY}}),
        attachment("file", "https://files.example/i.pdf"),
        attachment("video", "https://files.example/v.mp4"),
        attachment("audio", "https://files.example/s.mp3"),
        wire({**head, "message": {"text": "Listen"}}),
    ]


@pytest.mark.parametrize("payload", [GENERIC, BUTTON])
def test_messenger_templates(sandbox: Sandbox, fb: MessengerAdapter, payload: Any) -> None:
    message = MessengerTemplate(type="messenger_template", payload=payload)
    assert send(fb, outbound(message)) == ["m_sandbox-messenger-1"]
    assert sandbox.requests[0].body == wire(
        {**HEAD, "message": {"attachment": {"type": "template", "payload": payload}}}
    )


def test_custom_payload_is_merged_over_the_base_body(
    sandbox: Sandbox, fb: MessengerAdapter
) -> None:
    payload: dict[str, Any] = {"messaging_type": "UPDATE", "message": {"text": "raw"}}
    send(fb, outbound(CustomPayload(type="custom_payload", payload=payload)))
    assert sandbox.requests[0].body == wire(
        {"recipient": {"id": PSID}, "messaging_type": "UPDATE", "message": {"text": "raw"}}
    )


# -- Instagram on the wire ------------------------------------------------------------


def test_instagram_text_goes_to_the_account_with_a_bearer_token(
    sandbox: Sandbox, ig: InstagramAdapter
) -> None:
    menu = [QuickReply(title="Yes", payload="y")]
    assert send(ig, outbound(text("é" * 1000, quick_replies=menu))) == ["m_sandbox-instagram-1"]
    [seen] = sandbox.requests
    assert (seen.provider, seen.path) == ("instagram", f"/{GRAPH_VERSION}/{IG_ID}/messages")
    assert seen.headers["authorization"] == f"Bearer {IG_TOKEN}"
    assert seen.body == wire(
        {
            **HEAD,
            "message": {
                "text": "é" * 1000,
                "quick_replies": [{"content_type": "text", "title": "Yes", "payload": "y"}],
            },
        }
    )


def test_instagram_media_and_generic_template(sandbox: Sandbox, ig: InstagramAdapter) -> None:
    media = MediaMessage(
        type="media",
        attachments=[Attachment(url="https://files.example/a.jpg", kind="image", caption="Hi")],
    )
    assert send(ig, outbound(media)) == ["m_sandbox-instagram-1", "m_sandbox-instagram-2"]
    send(ig, outbound(MessengerTemplate(type="messenger_template", payload=GENERIC)))
    bodies = [r.json() for r in sandbox.requests]
    assert bodies[0]["message"] == {
        "attachment": {
            "type": "image",
            "payload": {"url": "https://files.example/a.jpg", "is_reusable": True},
        }
    }
    assert bodies[1]["message"] == {"text": "Hi"}
    assert bodies[2]["message"]["attachment"] == {"type": "template", "payload": GENERIC}


# -- limits ---------------------------------------------------------------------------


def menu_of(n: int) -> list[QuickReply]:
    return [QuickReply(title=f"Option {i}") for i in range(n)]


@pytest.mark.parametrize(
    ("message", "fragment"),
    [
        (text("é" * 2001), "messenger text is 2001 characters; the limit is 2000"),
        (text("hi", quick_replies=menu_of(14)), "messenger quick replies are 14; the limit is 13"),
        (text("hi", quick_replies=[QuickReply(title="t" * 21)]), "quick reply title is 21"),
        (
            text("hi", quick_replies=[QuickReply(title="t", payload="p" * 1001)]),
            "quick reply payload is 1001",
        ),
        (text("hi", message_tag="MARKETING"), "message_tag 'MARKETING' is not allowed"),
        (
            MediaMessage(
                type="media",
                attachments=[
                    Attachment(url="https://x.example/a.jpg", kind="image", caption="c" * 2001)
                ],
            ),
            "messenger caption (sent as a text) is 2001 characters",
        ),
        (
            MessengerTemplate(type="messenger_template", payload={**BUTTON, "text": "b" * 641}),
            "button template text is 641 characters; the limit is 640",
        ),
        (
            MessengerTemplate(type="messenger_template", payload={**BUTTON, "buttons": []}),
            "button template buttons are 0; allowed 1 to 3",
        ),
        (
            MessengerTemplate(
                type="messenger_template",
                payload={**BUTTON, "buttons": [WEB_URL] * 4},
            ),
            "button template buttons are 4; allowed 1 to 3",
        ),
        (
            MessengerTemplate(
                type="messenger_template",
                payload={"template_type": "generic", "elements": [{"title": "e"}] * 11},
            ),
            "generic template elements are 11; allowed 1 to 10",
        ),
        (EmailMessage(type="email", subject="s", html="<p>x</p>"), "messenger cannot send email"),
        (
            WhatsAppTemplate(type="whatsapp_template", name="t", language="en"),
            "messenger cannot send whatsapp_template",
        ),
    ],
)
def test_messenger_limits_are_invalid_content_before_any_request(
    sandbox: Sandbox, fb: MessengerAdapter, message: Any, fragment: str
) -> None:
    with pytest.raises(InvalidContent) as caught:
        fb.plan(outbound(message))
    assert fragment in str(caught.value)
    assert sandbox.requests == []


@pytest.mark.parametrize(
    ("message", "fragment"),
    [
        (text("é" * 1001), "instagram text is 1001 characters; the limit is 1000"),
        (text("hi", quick_replies=menu_of(14)), "instagram quick replies are 14"),
        (
            text("hi", message_tag="POST_PURCHASE_UPDATE"),
            "instagram message_tag 'POST_PURCHASE_UPDATE' is not allowed (HUMAN_AGENT)",
        ),
        (
            MessengerTemplate(type="messenger_template", payload=BUTTON),
            "instagram cannot send button templates",
        ),
        (
            MediaMessage(
                type="media",
                attachments=[
                    Attachment(url="https://x.example/a.jpg", kind="image", caption="c" * 1001)
                ],
            ),
            "instagram caption (sent as a text) is 1001 characters",
        ),
    ],
)
def test_instagram_limits_are_invalid_content_before_any_request(
    sandbox: Sandbox, ig: InstagramAdapter, message: Any, fragment: str
) -> None:
    with pytest.raises(InvalidContent) as caught:
        ig.plan(outbound(message))
    assert fragment in str(caught.value)
    assert sandbox.requests == []


def test_the_sandbox_itself_refuses_what_meta_refuses(sandbox: Sandbox) -> None:
    fb_url = f"{sandbox.url}/{GRAPH_VERSION}/me/messages?access_token={FB_TOKEN}"
    ig_url = f"{sandbox.url}/{GRAPH_VERSION}/{IG_ID}/messages"
    bearer = {"authorization": f"Bearer {IG_TOKEN}"}
    with httpx.Client() as client:
        long = client.post(fb_url, json={**HEAD, "message": {"text": "x" * 2001}})
        ig_long = client.post(
            ig_url, headers=bearer, json={**HEAD, "message": {"text": "x" * 1001}}
        )
        ig_tag = client.post(
            ig_url,
            headers=bearer,
            json={
                **HEAD,
                "messaging_type": "MESSAGE_TAG",
                "tag": "ACCOUNT_UPDATE",
                "message": {"text": "x"},
            },
        )
        ig_no_auth = client.post(ig_url, json={**HEAD, "message": {"text": "x"}})
    for answer in (long, ig_long, ig_tag):
        assert (answer.status_code, answer.json()["error"]["code"]) == (400, 100)
    assert "2000" in long.json()["error"]["message"]
    assert "1000" in ig_long.json()["error"]["message"]
    assert (ig_no_auth.status_code, ig_no_auth.json()["error"]["code"]) == (401, 190)


# -- errors ---------------------------------------------------------------------------

#: docs/channels/messenger.md#errors: (code, subcode) -> (Herald code, provider_code).
DOCUMENTED: dict[tuple[int, int | None], tuple[str, str]] = {
    (1200, None): ("provider_unavailable", "1200"),
    (2, None): ("provider_unavailable", "2"),
    (4, None): ("rate_limited", "4"),
    (613, None): ("rate_limited", "613"),
    (190, None): ("auth_failed", "190"),
    (190, 460): ("auth_failed", "190"),
    (10, 2018278): ("window_closed", "10/2018278"),
    (10, None): ("auth_failed", "10"),
    (10, 1234): ("auth_failed", "10"),
    (10, 2018065): ("auth_failed", "10/2018065"),
    (10, 2018108): ("recipient_unavailable", "10/2018108"),
    (200, 1545041): ("recipient_unavailable", "200/1545041"),
    (200, None): ("auth_failed", "200"),
    (551, None): ("recipient_unavailable", "551"),
    (551, 1545041): ("recipient_unavailable", "551"),
    (100, 2018001): ("recipient_unavailable", "100/2018001"),
    (100, 2018109): ("invalid_content", "100/2018109"),
    (100, None): ("invalid_content", "100"),
    (100, 33): ("invalid_content", "100"),
}


def graph_body(
    code: int, subcode: int | None, message: str = "Something happened"
) -> dict[str, Any]:
    error: dict[str, Any] = {
        "message": f"(#{code}) {message}",
        "type": "OAuthException",
        "code": code,
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    error["fbtrace_id"] = "AbC123"
    return {"error": error}


def test_the_table_keys_are_the_documented_ones() -> None:
    assert set(ERRORS) == {
        *(1200, 2, 4, 613, 190, 10, 200, 551, 100),
        *((10, 2018278), (10, 2018065), (10, 2018108), (200, 1545041)),
        *((100, 2018001), (100, 2018109)),
    }


@pytest.mark.parametrize(("code", "subcode"), sorted(DOCUMENTED, key=str))
def test_every_documented_code_and_subcode_maps(code: int, subcode: int | None) -> None:
    # The pair decides when the table names it; else the code alone.
    answer = read(httpx.Response(400, json=graph_body(code, subcode)))
    exc = classify(answer, ERRORS, "messenger", mask=Mask())
    assert (exc.code, exc.provider_code) == DOCUMENTED[(code, subcode)]
    assert exc.message == f"messenger: (#{code}) Something happened [fbtrace_id AbC123]"


#: Through the sandbox, for Messenger and Instagram alike.
ANSWERS = [
    Row(WindowClosed, "10/2018278", 400, graph_body(10, 2018278)),
    Row(AuthFailed, "190", 401, graph_body(190, None)),
    Row(ProviderUnavailable, "1200", 500, graph_body(1200, None), in_doubt=True),
    Row(ProviderUnavailable, "2", 400, graph_body(2, None)),  # a 400: not sent
    Row(
        RateLimited, "613", 400, graph_body(613, None), headers={"Retry-After": "5"}, retry_after=5
    ),
    Row(RecipientUnavailable, "551", to="blocked"),
    Row(WindowClosed, "10/2018278", to="window-closed"),
    Row(RecipientUnavailable, "100/2018001", to="unknown-user"),
    Row(RateLimited, "613", to="flood"),
    Row(ProviderUnavailable, "1200", to="unavailable", in_doubt=True),
    # Unknown codes and answers without a Graph error: by HTTP status.
    Row(InvalidContent, "99999", 400, graph_body(99999, None)),
    Row(ProviderUnavailable, "99999", 500, graph_body(99999, None), in_doubt=True),
    Row(ProviderUnavailable, "503", 503, "Service Unavailable", in_doubt=True),
    Row(ProviderUnavailable, "200", 200, {"recipient_id": PSID}, in_doubt=True),
]


@pytest.mark.parametrize("row", support.rows(ANSWERS))
def test_send_api_answers_become_errors(
    sandbox: Sandbox, any_adapter: SendApiAdapter, row: Row
) -> None:
    out = outbound(text("hi"), recipient=row.to or PSID)
    secrets = [FB_TOKEN, IG_TOKEN]
    support.answer_row(sandbox, any_adapter.name, any_adapter, out, row, secrets=secrets)
