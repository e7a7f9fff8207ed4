"""TwilioSmsAdapter against the sandbox's Twilio Messages API, over real HTTP."""

from __future__ import annotations

import base64
from contextlib import closing
from functools import partial
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from pydantic import SecretStr

from herald.adapters.http import ClientPool
from herald.adapters.twilio_sms import ERRORS, TwilioSmsAdapter
from herald.config import TwilioSmsChannel
from herald.contract.errors import (
    AuthFailed,
    ConfigError,
    InvalidContent,
    ProviderUnavailable,
    RateLimited,
    RecipientUnavailable,
    SendError,
    WindowClosed,
)
from herald.contract.job import Attachment, CustomPayload, EmailMessage, MediaMessage, QuickReply
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
)

SID = "AC0123456789abcdef0123456789abcdef"
TOKEN = "twilio-test-secret-token-42"
FROM = "+15005550006"
TO = "+351911111111"
PATH = f"/2010-04-01/Accounts/{SID}/Messages.json"


sandbox = sandbox_fixture(twilio_sms=TOKEN)


def make_adapter(base_url: str, **fields: Any) -> TwilioSmsAdapter:
    fields = fields or {"from_number": FROM}
    channel = TwilioSmsChannel(
        id="sms",
        type="twilio_sms",
        account_sid=SID,
        auth_token=SecretStr(TOKEN),
        base_url=base_url,
        **fields,
    )
    return TwilioSmsAdapter(channel, ClientPool(ssl_context=SHARED_SSL))


adapter = adapter_fixture(make_adapter)
outbound = partial(support.outbound, channel_id="sms", recipient=TO)


def form(sandbox: Sandbox, n: int = 0) -> list[tuple[str, str]]:
    """The n-th request's form fields, in the order they were sent."""
    return parse_qsl(sandbox.requests[n].body.decode(), keep_blank_values=True)


def twilio_error(code: int, status: int = 400) -> dict[str, Any]:
    return {
        "code": code,
        "message": f"error {code}",
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


# --- success ----------------------------------------------------------------------------------


def test_text_is_one_form_post_with_basic_auth(sandbox: Sandbox, adapter: TwilioSmsAdapter) -> None:
    ids = send(adapter, outbound(text()))

    assert ids == [f"SM{1:032x}"]
    [seen] = sandbox.requests
    assert (seen.provider, seen.method, seen.path) == ("twilio_sms", "POST", PATH)
    assert seen.headers["content-type"] == "application/x-www-form-urlencoded"
    expected_auth = "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert seen.headers["authorization"] == expected_auth
    assert form(sandbox) == [("To", TO), ("From", FROM), ("Body", FAMILY)]
    assert seen.body.startswith(b"To=%2B351911111111&From=%2B15005550006&Body=")


def test_quick_replies_become_a_numbered_menu(sandbox: Sandbox, adapter: TwilioSmsAdapter) -> None:
    replies = [QuickReply(title="Yes 👍", payload="YES"), QuickReply(title="No")]

    send(adapter, outbound(text("Confirm?", quick_replies=replies)))

    assert dict(form(sandbox))["Body"] == "Confirm?\n\n1. Yes 👍\n2. No"


def test_messaging_service_replaces_from(sandbox: Sandbox) -> None:
    sid = "MG0123456789abcdef0123456789abcdef"
    with closing(make_adapter(sandbox.url, messaging_service_sid=sid)) as adapter:
        send(adapter, outbound(text("hi")))
    assert form(sandbox) == [
        ("To", TO),
        ("MessagingServiceSid", "MG0123456789abcdef0123456789abcdef"),
        ("Body", "hi"),
    ]


def test_a_channel_without_sender_is_a_config_error() -> None:
    channel = TwilioSmsChannel(
        id="sms", type="twilio_sms", account_sid=SID, auth_token=SecretStr(TOKEN)
    )
    with pytest.raises(ConfigError, match="from_number or messaging_service_sid"):
        TwilioSmsAdapter(channel, ClientPool(ssl_context=SHARED_SSL))


def test_media_is_one_mms_with_every_url_and_the_captions(
    sandbox: Sandbox, adapter: TwilioSmsAdapter
) -> None:
    message = MediaMessage(
        type="media",
        attachments=[
            Attachment(url="https://files.example/a.png", kind="image", caption="Look 👀"),
            Attachment(url="https://files.example/b.pdf", kind="file", filename="b.pdf"),
            Attachment(url="https://files.example/c.mp4", kind="video", caption="clip"),
        ],
    )
    assert [p.index for p in adapter.plan(outbound(message))] == [0]

    assert send(adapter, outbound(message)) == [f"SM{1:032x}"]

    assert form(sandbox) == [
        ("To", TO),
        ("From", FROM),
        ("Body", "Look 👀\nclip"),
        ("MediaUrl", "https://files.example/a.png"),
        ("MediaUrl", "https://files.example/b.pdf"),
        ("MediaUrl", "https://files.example/c.mp4"),
    ]


def test_media_without_captions_has_no_body(sandbox: Sandbox, adapter: TwilioSmsAdapter) -> None:
    message = MediaMessage(
        type="media", attachments=[Attachment(url="https://files.example/a.png", kind="image")]
    )
    send(adapter, outbound(message))
    assert [name for name, _ in form(sandbox)] == ["To", "From", "MediaUrl"]


def test_custom_payload_fields_are_merged_but_to_stays(
    sandbox: Sandbox, adapter: TwilioSmsAdapter
) -> None:
    payload = CustomPayload(
        type="custom_payload",
        payload={
            "Body": "raw",
            "To": "+19999999999",
            "StatusCallback": "https://hooks.example/status",
            "MediaUrl": ["https://f.example/1.png", "https://f.example/2.png"],
            "ValidityPeriod": 60,
            "SmartEncoded": True,
        },
    )
    send(adapter, outbound(payload))
    assert form(sandbox) == [
        ("To", TO),
        ("From", FROM),
        ("Body", "raw"),
        ("StatusCallback", "https://hooks.example/status"),
        ("MediaUrl", "https://f.example/1.png"),
        ("MediaUrl", "https://f.example/2.png"),
        ("ValidityPeriod", "60"),
        ("SmartEncoded", "true"),
    ]


# --- limits, checked before any request -------------------------------------------------------


def test_body_over_1600_characters_is_refused_before_any_request(
    sandbox: Sandbox, adapter: TwilioSmsAdapter
) -> None:
    with pytest.raises(InvalidContent, match="1601 characters; the limit is 1600"):
        adapter.plan(outbound(text("😀" * 1601)))
    # The menu counts too.
    menu = text("x" * 1590, quick_replies=[QuickReply(title="Yes"), QuickReply(title="No")])
    with pytest.raises(InvalidContent, match="1600"):
        adapter.plan(outbound(menu))
    assert sandbox.requests == []
    assert send(adapter, outbound(text("😀" * 1600))) == [f"SM{1:032x}"]  # exactly the limit


def test_more_than_ten_media_and_bad_payloads_are_refused(
    sandbox: Sandbox, adapter: TwilioSmsAdapter
) -> None:
    many = MediaMessage(
        type="media",
        attachments=[Attachment(url=f"https://f.example/{n}.png", kind="image") for n in range(11)],
    )
    with pytest.raises(InvalidContent, match="11 attachments; the limit is 10"):
        adapter.plan(outbound(many))
    nested = CustomPayload(type="custom_payload", payload={"Body": "x", "Extra": {"a": 1}})
    with pytest.raises(InvalidContent, match="Extra is not a text or number"):
        adapter.plan(outbound(nested))
    long = CustomPayload(type="custom_payload", payload={"Body": "x" * 1601})
    with pytest.raises(InvalidContent, match="1600"):
        adapter.plan(outbound(long))
    with pytest.raises(InvalidContent, match="twilio_sms cannot send email"):
        adapter.plan(outbound(EmailMessage(type="email", subject="Hi", html="<p>Hi</p>")))
    assert sandbox.requests == []


# --- errors -----------------------------------------------------------------------------------

#: Every Twilio code docs/channels/twilio_sms.md#errors lists.
DOCUMENTED: dict[int, type[SendError]] = {
    20003: AuthFailed,
    **dict.fromkeys([21211, 21408, 21606, 21608, 21610, 21614, 21635], RecipientUnavailable),
    21617: InvalidContent,
    63016: WindowClosed,
    20429: RateLimited,
    20500: ProviderUnavailable,
}


def test_the_table_is_the_documented_one() -> None:
    assert dict(ERRORS) == DOCUMENTED


#: Twilio's answers: its codes (the table), else the HTTP status rule.
ANSWERS = [
    Row(
        RecipientUnavailable,
        "21606",
        400,
        twilio_error(21606),
        message="twilio_sms: error 21606",
    ),
    Row(RecipientUnavailable, "21211", to="+15005550001"),
    Row(RecipientUnavailable, "21408", to="+15005550003"),
    Row(RecipientUnavailable, "21610", to="+15005550004"),
    Row(RecipientUnavailable, "21614", to="+15005550009"),
    Row(RecipientUnavailable, "21211", to="not-a-number"),
    Row(InvalidContent, "21617", 400, twilio_error(21617)),
    Row(InvalidContent, "21602", 400, twilio_error(21602)),  # any other 400
    Row(WindowClosed, "63016", 400, twilio_error(63016)),
    Row(RateLimited, "20429", to="+15005550429"),
    Row(
        RateLimited,
        "20429",
        429,
        twilio_error(20429, 429),
        headers={"Retry-After": "7"},
        retry_after=7,
    ),
    # SMS is not idempotent: a 5xx may have gone out.
    Row(ProviderUnavailable, "20500", 500, twilio_error(20500, 500), in_doubt=True),
    Row(ProviderUnavailable, "20500", 503, twilio_error(20500, 503), in_doubt=True),
    Row(
        ProviderUnavailable,
        "502",
        502,
        "<html>Bad Gateway</html>",
        in_doubt=True,
        message="twilio_sms: HTTP 502",
    ),
    # The shared status rule: a 403 without a known code is auth_failed.
    Row(AuthFailed, "20004", 403, twilio_error(20004, 403)),
    Row(AuthFailed, "401", 401, ""),
    # A 2xx without a sid may have been sent.
    Row(ProviderUnavailable, "201", 201, {"status": "queued"}, in_doubt=True),
]


@pytest.mark.parametrize("row", support.rows(ANSWERS))
def test_twilio_answers_become_errors(
    sandbox: Sandbox, adapter: TwilioSmsAdapter, row: Row
) -> None:
    out = outbound(text(), recipient=row.to or TO)
    support.answer_row(sandbox, "twilio_sms", adapter, out, row, secrets=[TOKEN])


def test_the_sandbox_validates_auth_path_and_form(sandbox: Sandbox) -> None:
    auth = (SID, TOKEN)
    with httpx.Client(base_url=sandbox.url) as client:
        other_sid = client.post(
            "/2010-04-01/Accounts/AC" + "f" * 32 + "/Messages.json",
            data={"To": TO, "From": FROM, "Body": "x"},
            auth=auth,
        )
        no_from = client.post(PATH, data={"To": TO, "Body": "x"}, auth=auth)
        long = client.post(PATH, data={"To": TO, "From": FROM, "Body": "x" * 1601}, auth=auth)
        empty = client.post(PATH, data={"To": TO, "From": FROM}, auth=auth)
    assert other_sid.status_code == 401 and other_sid.json()["code"] == 20003
    assert no_from.status_code == 400 and no_from.json()["code"] == 21603
    assert long.json() == {
        "code": 21617,
        "message": "The concatenated message body exceeds the 1600 character limit.",
        "more_info": "https://www.twilio.com/docs/errors/21617",
        "status": 400,
    }
    assert empty.json()["code"] == 21602
