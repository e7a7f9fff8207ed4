"""ViberAdapter against the sandbox's Viber REST Bot API, over real HTTP."""

from __future__ import annotations

from contextlib import closing
from functools import partial

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
from tests.adapter_support import FAMILY, adapter_fixture, sandbox_fixture, send, text

TOKEN = "4453b6ac-viber-test-token-e02c5f12"
USER = "01234567890A="
PATH = "/pa/send_message"
HEAD = {"receiver": USER, "min_api_version": 1, "sender": {"name": "Herald Shop"}}

sandbox = sandbox_fixture(viber=TOKEN)


def make_adapter(base_url: str, token: str = TOKEN) -> ViberAdapter:
    channel = ViberChannel(
        id="viber",
        type="viber",
        auth_token=SecretStr(token),
        sender_name="Herald Shop",
        base_url=base_url,
    )
    return ViberAdapter(channel, ClientPool())


adapter = adapter_fixture(make_adapter)
outbound = partial(support.outbound, channel_id="viber", recipient=USER)
fail = partial(support.fail, secrets=[TOKEN])


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


def test_wrong_token_is_auth_failed(sandbox: Sandbox) -> None:
    with closing(make_adapter(sandbox.url, token="not-the-token")) as adapter:
        exc = fail(adapter, outbound(text()))
    assert type(exc) is AuthFailed
    assert exc.provider_code == "2"
    assert exc.message == "viber send_message: status 2 invalidAuthToken"


@pytest.mark.parametrize(
    ("receiver", "error", "code"),
    [
        ("unregistered", RecipientUnavailable, "5"),
        ("unsubscribed", RecipientUnavailable, "6"),
        ("flood", RateLimited, "12"),
    ],
)
def test_special_receivers_of_the_sandbox(
    adapter: ViberAdapter, receiver: str, error: type[SendError], code: str
) -> None:
    exc = fail(adapter, outbound(text(), recipient=receiver))
    assert type(exc) is error
    assert exc.provider_code == code
    assert exc.retryable is (error is RateLimited)


#: Every Viber status PROVIDERS.md lists (1-24) and an unknown one.
EXPECTED: dict[int, type[SendError]] = {
    **{status: InvalidContent for status in (1, 3, 4, *range(7, 12), *range(13, 25))},
    2: AuthFailed,
    5: RecipientUnavailable,
    6: RecipientUnavailable,
    12: RateLimited,
    99: ProviderUnavailable,
}


def test_the_table_is_the_documented_one() -> None:
    assert {s: e for s, e in EXPECTED.items() if s not in (12, 99)} == ERRORS


@pytest.mark.parametrize(("status", "error"), sorted(EXPECTED.items()))
def test_every_viber_status_maps(
    sandbox: Sandbox, adapter: ViberAdapter, status: int, error: type[SendError]
) -> None:
    sandbox.fail_next("viber", 200, {"status": status, "status_message": f"name{status}"})
    exc = fail(adapter, outbound(text()))
    assert type(exc) is error
    assert exc.provider_code == str(status)
    assert exc.message == f"viber send_message: status {status} name{status}"
    assert exc.retryable is (error in (RateLimited, ProviderUnavailable))
    assert not exc.in_doubt


@pytest.mark.parametrize(
    ("status", "body", "error", "in_doubt"),
    [
        (500, "<html>oops</html>", ProviderUnavailable, True),
        (200, "not json", ProviderUnavailable, True),
        (429, "slow down", RateLimited, False),
        (404, "no such path", ProviderUnavailable, False),
    ],
)
def test_answers_without_a_status(
    sandbox: Sandbox,
    adapter: ViberAdapter,
    status: int,
    body: str,
    error: type[SendError],
    in_doubt: bool,
) -> None:
    sandbox.fail_next("viber", status, body)
    exc = fail(adapter, outbound(text()))
    assert type(exc) is error
    assert (exc.provider_code, exc.in_doubt) == (str(status), in_doubt)


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
