"""ViberAdapter against the sandbox's Viber REST Bot API, over real HTTP."""

from __future__ import annotations

from functools import partial
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from herald.adapters.http import ClientPool
from herald.adapters.viber import ERRORS, ViberAdapter
from herald.config import ViberChannel
from herald.contract.errors import (
    AuthFailed,
    InvalidContent,
    ProviderUnavailable,
    RateLimited,
    RecipientUnavailable,
    SendError,
)
from herald.contract.job import Attachment, CustomPayload, EmailMessage, MediaMessage, QuickReply
from herald.testing.sandbox import Sandbox
from herald.testing.sandbox.viber import FIRST_MESSAGE_TOKEN
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

TOKEN = "4453b6ac-viber-test-token-e02c5f12"
USER = "01234567890A="
PATH = "/pa/send_message"
HEAD = {"receiver": USER, "min_api_version": 1, "sender": {"name": "Herald Shop"}}

sandbox = sandbox_fixture(viber=TOKEN)


def make_adapter(base_url: str) -> ViberAdapter:
    channel = ViberChannel(
        id="viber",
        type="viber",
        auth_token=SecretStr(TOKEN),
        sender_name="Herald Shop",
        base_url=base_url,
    )
    return ViberAdapter(channel, ClientPool(ssl_context=SHARED_SSL))


adapter = adapter_fixture(make_adapter)
outbound = partial(support.outbound, channel_id="viber", recipient=USER)


def token(n: int) -> str:
    return str(FIRST_MESSAGE_TOKEN + n)


# --- success ----------------------------------------------------------------------------------


def test_text_is_sent_with_the_token_header_and_the_id_is_a_string(
    sandbox: Sandbox, adapter: ViberAdapter
) -> None:
    assert send(adapter, outbound(text())) == [token(1)]

    [seen] = sandbox.requests
    assert (seen.provider, seen.method, seen.path) == ("viber", "POST", PATH)
    assert seen.headers["x-viber-auth-token"] == TOKEN
    assert seen.headers["content-type"] == "application/json"
    assert seen.json() == {**HEAD, "type": "text", "text": FAMILY}
    assert FAMILY.encode() in seen.body  # the ZWJ sequence, byte for byte


def test_quick_replies_become_a_reply_keyboard(sandbox: Sandbox, adapter: ViberAdapter) -> None:
    replies = [QuickReply(title="Yes 👍", payload="YES"), QuickReply(title="No")]

    send(adapter, outbound(text("Confirm?", quick_replies=replies)))

    assert sandbox.requests[0].json() == {
        **HEAD,
        "type": "text",
        "text": "Confirm?",
        "keyboard": {
            "Type": "keyboard",
            "Buttons": [
                {"ActionType": "reply", "ActionBody": "YES", "Text": "Yes 👍"},
                {"ActionType": "reply", "ActionBody": "No", "Text": "No"},
            ],
        },
    }


def test_media_is_one_message_per_attachment_with_captions_after(
    sandbox: Sandbox, adapter: ViberAdapter
) -> None:
    message = MediaMessage(
        type="media",
        attachments=[
            Attachment(url="https://files.example/a.png", kind="image", caption="Look 👀"),
            Attachment(url="https://files.example/c.mp4", kind="video"),
            Attachment(url="https://files.example/b.pdf", kind="file", filename="Invoice A-17.pdf"),
            Attachment(url="https://files.example/songs/my%20song.mp3", kind="audio"),
        ],
    )
    assert [p.index for p in adapter.plan(outbound(message))] == [0, 1, 2, 3, 4]

    assert send(adapter, outbound(message)) == [token(n) for n in range(1, 6)]

    assert [r.json() for r in sandbox.requests] == [
        {**HEAD, "type": "picture", "media": "https://files.example/a.png"},
        {**HEAD, "type": "text", "text": "Look 👀"},
        {**HEAD, "type": "video", "media": "https://files.example/c.mp4"},
        {
            **HEAD,
            "type": "file",
            "media": "https://files.example/b.pdf",
            "file_name": "Invoice A-17.pdf",
        },
        {
            **HEAD,
            "type": "file",
            "media": "https://files.example/songs/my%20song.mp3",
            "file_name": "my song.mp3",
        },
    ]


def test_custom_payload_is_merged_and_the_receiver_stays(
    sandbox: Sandbox, adapter: ViberAdapter
) -> None:
    payload = {
        "receiver": "other",
        "type": "url",
        "media": "https://shop.example",
        "tracking_data": "t",
    }
    send(adapter, outbound(CustomPayload(type="custom_payload", payload=payload)))
    assert sandbox.requests[0].json() == {**HEAD, **payload, "receiver": USER}


# --- limits, checked before any request -------------------------------------------------------


def test_limits_are_refused_before_any_request(sandbox: Sandbox, adapter: ViberAdapter) -> None:
    with pytest.raises(InvalidContent, match="text is 7001 characters; the limit is 7000"):
        adapter.plan(outbound(text("x" * 7001)))
    caption = Attachment(url="https://f.example/a.png", kind="image", caption="x" * 7001)
    with pytest.raises(InvalidContent, match="caption is 7001"):
        adapter.plan(outbound(MediaMessage(type="media", attachments=[caption])))
    many = [QuickReply(title=str(n)) for n in range(25)]
    with pytest.raises(InvalidContent, match="25 buttons; the limit is 24"):
        adapter.plan(outbound(text("Pick", quick_replies=many)))
    heavy = [QuickReply(title=str(n), payload="é" * 700) for n in range(24)]
    with pytest.raises(InvalidContent, match=r"bytes of JSON; the limit is 30720"):
        adapter.plan(outbound(text("Pick", quick_replies=heavy)))
    with pytest.raises(InvalidContent, match="viber cannot send email"):
        adapter.plan(outbound(EmailMessage(type="email", subject="Hi", html="<p>Hi</p>")))
    assert sandbox.requests == []
    # 7,000 four-byte emoji: at the text limit and still under 30 KB.
    assert send(adapter, outbound(text("😀" * 7000))) == [token(1)]


# --- errors -----------------------------------------------------------------------------------

#: Every Viber status docs/channels/viber.md#errors lists (1-24).
DOCUMENTED: dict[int, type[SendError]] = {
    **{status: InvalidContent for status in (1, 3, 4, *range(7, 12), *range(13, 25))},
    2: AuthFailed,
    5: RecipientUnavailable,
    6: RecipientUnavailable,
    12: RateLimited,
}


def test_the_table_is_the_documented_one() -> None:
    assert dict(ERRORS) == DOCUMENTED


def status(code: int, name: str) -> dict[str, Any]:
    return {"status": code, "status_message": name}


#: Viber's answers: a status on HTTP 200 (its table), else the HTTP status rule.
ANSWERS = [
    Row(AuthFailed, "2", 200, status(2, "invalidAuthToken")),
    Row(RecipientUnavailable, "5", to="unregistered"),
    Row(RecipientUnavailable, "6", to="unsubscribed"),
    Row(RateLimited, "12", to="flood"),
    Row(
        InvalidContent,
        "3",
        200,
        status(3, "badData"),
        message="viber send_message: status 3 badData",
    ),
    # An unknown status is an answer: the request was not taken, so it is retried.
    Row(
        ProviderUnavailable,
        "99",
        200,
        status(99, "name99"),
        message="viber send_message: status 99 name99",
    ),
    # Without a status: by HTTP status.
    Row(
        ProviderUnavailable,
        "500",
        500,
        "<html>oops</html>",
        in_doubt=True,
        message="viber send_message: HTTP 500 without a status",
    ),
    Row(ProviderUnavailable, "200", 200, "not json", in_doubt=True),
    Row(RateLimited, "429", 429, "slow down", headers={"Retry-After": "3"}, retry_after=3),
    Row(InvalidContent, "404", 404, "no such path"),
    Row(AuthFailed, "401", 401, "unauthorized"),
]


@pytest.mark.parametrize("row", support.rows(ANSWERS))
def test_viber_answers_become_errors(sandbox: Sandbox, adapter: ViberAdapter, row: Row) -> None:
    out = outbound(text(), recipient=row.to or USER)
    support.answer_row(sandbox, "viber", adapter, out, row, secrets=[TOKEN])


def test_the_sandbox_always_answers_200_with_a_status(sandbox: Sandbox) -> None:
    with httpx.Client(base_url=sandbox.url, headers={"x-viber-auth-token": TOKEN}) as client:
        no_sender = client.post(PATH, json={"receiver": USER, "type": "text", "text": "x"})
        too_long = client.post(PATH, json={**HEAD, "type": "text", "text": "x" * 7001})
        no_media = client.post(PATH, json={**HEAD, "type": "picture"})
        huge = client.post(PATH, json={**HEAD, "type": "text", "text": "x", "pad": "y" * 31000})
    assert [r.status_code for r in (no_sender, too_long, no_media, huge)] == [200] * 4
    assert no_sender.json() == {"status": 4, "status_message": "missingData"}
    assert too_long.json() == {"status": 3, "status_message": "badData"}
    assert no_media.json()["status"] == 4
    assert huge.json()["status"] == 3
