"""WhatsAppAdapter against the sandbox's WhatsApp Cloud API, over real HTTP."""

from __future__ import annotations

from contextlib import closing
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
    adapter_fixture,
    closed_port,
    fail,
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


def make_adapter(base_url: str, token: str = TOKEN, **pool: Any) -> WhatsAppAdapter:
    channel = WhatsAppChannel(
        id="wa",
        type="whatsapp",
        phone_number_id=PHONE_ID,
        access_token=SecretStr(token),
        base_url=base_url,
    )
    return WhatsAppAdapter(channel, ClientPool(**pool))


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

#: PROVIDERS.md's WhatsApp codes and the Herald code each must become.
DOCUMENTED: dict[int, str] = {
    **dict.fromkeys([0, 190, 3, 10, *range(200, 300), 131031, 131042, 368], "auth_failed"),
    **dict.fromkeys([131021, 131026, 131049, 133010], "recipient_unavailable"),
    131047: "window_closed",
    **dict.fromkeys(
        [100, 131008, 131009, 131051, 131052, 131053, *range(132000, 132017), 135000],
        "invalid_content",
    ),
    **dict.fromkeys([4, 80007, 130429, 131056, 131048], "rate_limited"),
    **dict.fromkeys([1, 2, 131000, 131016, 131057, 133004], "provider_unavailable"),
}
TRANSIENT = {1, 2, 4, 80007, 130429, 131000, 131016, 131056, 131057, 133004}
#: The HTTP status Meta answers these with (else 400).
STATUS = {190: 401, 0: 401, 2: 503, 131000: 500, 131016: 500, 133004: 503}


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


def test_the_table_maps_exactly_the_documented_codes() -> None:
    assert set(ERRORS) == set(DOCUMENTED)


@pytest.mark.parametrize("code", sorted(DOCUMENTED))
def test_every_documented_code_through_the_sandbox(
    sandbox: Sandbox, adapter: WhatsAppAdapter, code: int
) -> None:
    status = STATUS.get(code, 400)
    sandbox.fail_next("whatsapp", status, graph_body(code, subcode=2494010))
    exc = fail(adapter, outbound(text()))
    assert exc.code == DOCUMENTED[code]
    assert exc.retryable is (code in TRANSIENT)
    assert exc.provider_code == str(code)
    assert exc.message == (
        f"whatsapp: (#{code}) Something happened (Details here) [fbtrace_id AbCdEf123]"
    )
    if code == 131048:
        assert type(exc) is QuotaExceeded
    if isinstance(exc, ProviderUnavailable):
        assert exc.in_doubt is (status >= 500)
    assert len(sandbox.requests) == 1


@pytest.mark.parametrize(
    ("recipient", "error", "status"),
    [
        ("0131047", WindowClosed, 400),
        ("0131026", RecipientUnavailable, 400),
        ("0133010", RecipientUnavailable, 400),
        ("0131048", QuotaExceeded, 400),
        ("0130429", RateLimited, 400),
        ("0131056", RateLimited, 400),
        ("0368", AuthFailed, 400),
        ("0131000", ProviderUnavailable, 500),
        ("0133004", ProviderUnavailable, 503),
    ],
)
def test_special_recipients_answer_their_documented_error(
    adapter: WhatsAppAdapter, recipient: str, error: type[SendError], status: int
) -> None:
    exc = fail(adapter, outbound(text(), recipient=recipient))
    assert type(exc) is error
    assert exc.provider_code == recipient[1:]
    assert exc.in_doubt is (status >= 500)


@pytest.mark.parametrize(
    ("status", "body", "error", "provider_code", "in_doubt"),
    [
        (400, graph_body(99999), InvalidContent, "99999", False),
        (403, graph_body(99999), AuthFailed, "99999", False),
        (429, graph_body(99999), RateLimited, "99999", False),
        (500, graph_body(99999), ProviderUnavailable, "99999", True),
        (502, "<html>Bad Gateway</html>", ProviderUnavailable, "502", True),
        (400, {"error": "nope"}, InvalidContent, "400", False),
        (200, {"messaging_product": "whatsapp", "messages": []}, ProviderUnavailable, "200", True),
    ],
)
def test_unknown_codes_and_odd_answers_go_by_http_status(
    sandbox: Sandbox,
    adapter: WhatsAppAdapter,
    status: int,
    body: Any,
    error: type[SendError],
    provider_code: str,
    in_doubt: bool,
) -> None:
    sandbox.fail_next("whatsapp", status, body)
    exc = fail(adapter, outbound(text()))
    assert type(exc) is error
    assert exc.provider_code == provider_code
    assert exc.in_doubt is in_doubt


def test_wrong_token_is_auth_failed_and_never_shown(sandbox: Sandbox) -> None:
    with closing(make_adapter(sandbox.url, token="wrong-token-xyz")) as adapter:
        exc = fail(adapter, outbound(text()))
    assert type(exc) is AuthFailed
    assert exc.provider_code == "190"
    assert "wrong-token-xyz" not in str(exc)
    assert all("wrong-token-xyz" not in r.path for r in sandbox.requests)


def test_a_token_echoed_by_meta_is_scrubbed(sandbox: Sandbox, adapter: WhatsAppAdapter) -> None:
    sandbox.fail_next("whatsapp", 401, graph_body(190, f"Malformed access token {TOKEN}"))
    exc = fail(adapter, outbound(text()))
    assert TOKEN not in str(exc) and TOKEN not in exc.message
    assert "Malformed access token <token>" in exc.message


def test_rate_limit_keeps_a_retry_after_header(sandbox: Sandbox, adapter: WhatsAppAdapter) -> None:
    sandbox.fail_next("whatsapp", 429, graph_body(130429), headers={"Retry-After": "7"})
    exc = fail(adapter, outbound(text()))
    assert isinstance(exc, RateLimited) and exc.retry_after == 7


def test_read_timeout_is_provider_unavailable_in_doubt(sandbox: Sandbox) -> None:
    sandbox.delay(2)
    with closing(make_adapter(sandbox.url, timeout=0.2)) as adapter:
        exc = fail(adapter, outbound(text()))
    assert type(exc) is ProviderUnavailable and exc.in_doubt


def test_connection_refused_is_provider_unavailable_not_in_doubt() -> None:
    with closing(make_adapter(f"http://127.0.0.1:{closed_port()}")) as adapter:
        exc = fail(adapter, outbound(text()))
    assert type(exc) is ProviderUnavailable and not exc.in_doubt
    assert TOKEN not in str(exc)
