"""TelegramAdapter against the sandbox's Telegram Bot API, over real HTTP."""

from __future__ import annotations

from contextlib import closing
from functools import partial
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from herald.adapters.http import ClientPool
from herald.adapters.telegram import ERRORS, MIGRATED, TelegramAdapter
from herald.config import TelegramChannel
from herald.contract.errors import (
    AuthFailed,
    InvalidContent,
    ProviderUnavailable,
    RateLimited,
    RecipientUnavailable,
)
from herald.contract.job import Attachment, CustomPayload, EmailMessage, MediaMessage, QuickReply
from herald.testing.sandbox import Sandbox
from herald.testing.sandbox.server import FLOOD_RETRY_AFTER
from herald.testing.sandbox.telegram import MIGRATED_CHAT_ID
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

TOKEN = "987654:AAH-sandbox-secret-token_xyz"

sandbox = sandbox_fixture(telegram=TOKEN)


def make_adapter(base_url: str, token: str = TOKEN, **pool: Any) -> TelegramAdapter:
    channel = TelegramChannel(
        id="tg", type="telegram", bot_token=SecretStr(token), base_url=base_url
    )
    return TelegramAdapter(channel, ClientPool(ssl_context=SHARED_SSL, **pool))


adapter = adapter_fixture(make_adapter)
outbound = partial(support.outbound, channel_id="tg", recipient="4242")
#: Neither the error nor anything it was raised from shows the token, or even its bot id.
fail = partial(support.fail, secrets=[TOKEN, "987654"])


# --- success ----------------------------------------------------------------------------------


def test_text_is_sent_intact_and_ids_are_chat_and_message(
    sandbox: Sandbox, adapter: TelegramAdapter
) -> None:
    assert send(adapter, outbound(text())) == ["4242:1"]
    assert send(adapter, outbound(text())) == ["4242:2"]  # message ids count per chat
    assert send(adapter, outbound(text(), recipient="77")) == ["77:1"]

    first = sandbox.requests[0]
    assert first.provider == "telegram"
    assert first.method == "POST"
    assert first.path == "/bot<token>/sendMessage"
    assert first.headers["content-type"] == "application/json"
    assert first.json() == {"chat_id": "4242", "text": FAMILY}
    assert FAMILY.encode() in first.body  # the ZWJ sequence, byte for byte


def test_media_is_one_request_per_attachment_in_order(
    sandbox: Sandbox, adapter: TelegramAdapter
) -> None:
    message = MediaMessage(
        type="media",
        attachments=[
            Attachment(url="https://files.example/a.png", kind="image", caption="Look 👀"),
            Attachment(url="https://files.example/b.pdf", kind="file", filename="b.pdf"),
            Attachment(url="https://files.example/c.mp4", kind="video", caption="clip"),
            Attachment(url="https://files.example/d.mp3", kind="audio"),
        ],
    )
    plan = adapter.plan(outbound(message))
    assert [part.index for part in plan] == [0, 1, 2, 3]

    ids = send(adapter, outbound(message))

    assert ids == ["4242:1", "4242:2", "4242:3", "4242:4"]
    assert [r.path for r in sandbox.requests] == [
        "/bot<token>/sendPhoto",
        "/bot<token>/sendDocument",
        "/bot<token>/sendVideo",
        "/bot<token>/sendAudio",
    ]
    assert [r.json() for r in sandbox.requests] == [
        {"chat_id": "4242", "photo": "https://files.example/a.png", "caption": "Look 👀"},
        {"chat_id": "4242", "document": "https://files.example/b.pdf"},
        {"chat_id": "4242", "video": "https://files.example/c.mp4", "caption": "clip"},
        {"chat_id": "4242", "audio": "https://files.example/d.mp3"},
    ]


def test_quick_replies_become_an_inline_keyboard(
    sandbox: Sandbox, adapter: TelegramAdapter
) -> None:
    replies = [QuickReply(title="Yes 👍", payload="YES"), QuickReply(title="No")]

    send(adapter, outbound(text("Confirm?", quick_replies=replies)))

    assert sandbox.requests[0].json()["reply_markup"] == {
        "inline_keyboard": [
            [{"text": "Yes 👍", "callback_data": "YES"}],
            [{"text": "No", "callback_data": "No"}],
        ]
    }


def test_custom_payload_is_merged_with_the_chat_id(
    sandbox: Sandbox, adapter: TelegramAdapter
) -> None:
    payload = CustomPayload(
        type="custom_payload", payload={"text": "<b>bold</b>", "parse_mode": "HTML", "chat_id": "x"}
    )

    assert send(adapter, outbound(payload)) == ["4242:1"]
    assert sandbox.requests[0].json() == {
        "text": "<b>bold</b>",
        "parse_mode": "HTML",
        "chat_id": "4242",
    }


def test_a_migrated_group_is_resent_once_to_its_new_id(
    sandbox: Sandbox, adapter: TelegramAdapter
) -> None:
    ids = send(adapter, outbound(text(), recipient="migrated"))

    assert ids == [f"{MIGRATED_CHAT_ID}:1"]
    assert [r.json()["chat_id"] for r in sandbox.requests] == ["migrated", MIGRATED_CHAT_ID]


# --- limits, checked before any request -------------------------------------------------------


def test_text_over_4096_utf16_units_is_refused_before_any_request(
    sandbox: Sandbox, adapter: TelegramAdapter
) -> None:
    # 2,049 code points, but 4,098 UTF-16 units: Telegram's count, not Python's.
    too_long = "😀" * 2049
    with pytest.raises(InvalidContent, match="4096"):
        adapter.plan(outbound(text(too_long)))
    assert send(adapter, outbound(text("😀" * 2048))) == ["4242:1"]  # exactly at the limit
    assert len(sandbox.requests) == 1


def test_long_caption_and_long_callback_data_are_refused(
    sandbox: Sandbox, adapter: TelegramAdapter
) -> None:
    media = MediaMessage(
        type="media",
        attachments=[Attachment(url="https://f.example/a.png", kind="image", caption="x" * 1025)],
    )
    with pytest.raises(InvalidContent, match="1024"):
        adapter.plan(outbound(media))
    menu = text("Pick", quick_replies=[QuickReply(title="A", payload="é" * 33)])
    with pytest.raises(InvalidContent, match="64"):
        adapter.plan(outbound(menu))
    assert sandbox.requests == []


def test_types_telegram_cannot_send_are_invalid_content(adapter: TelegramAdapter) -> None:
    email = EmailMessage(type="email", subject="Hi", html="<p>Hi</p>")
    with pytest.raises(InvalidContent, match="telegram cannot send email"):
        adapter.plan(outbound(email))


# --- errors -----------------------------------------------------------------------------------


def test_the_sandbox_itself_rejects_too_long_text(sandbox: Sandbox) -> None:
    url = f"{sandbox.url}/bot{TOKEN}/sendMessage"
    with httpx.Client() as client:
        long = client.post(url, json={"chat_id": 1, "text": "😀" * 2049})
        empty = client.post(url, json={"chat_id": 1, "text": ""})
    assert long.status_code == 400
    assert long.json() == {
        "ok": False,
        "error_code": 400,
        "description": "Bad Request: message is too long",
    }
    assert empty.json()["description"] == "Bad Request: message text is empty"


def test_a_stopped_sandbox_refuses_even_kept_alive_connections(sandbox: Sandbox) -> None:
    with closing(make_adapter(sandbox.url)) as adapter:
        assert send(adapter, outbound(text())) == ["4242:1"]
        sandbox.stop()
        exc = fail(adapter, outbound(text()))
    assert isinstance(exc, ProviderUnavailable)


# --- the error table ----------------------------------------------------------------------


def tg(code: int, description: str, **parameters: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    return {**body, "parameters": parameters} if parameters else body


MOVED = tg(400, "Bad Request: group chat was upgraded", migrate_to_chat_id=MIGRATED_CHAT_ID)
#: docs/channels/telegram.md#errors: the table, then the status rule.
ANSWERS = [
    Row(AuthFailed, "404", 404, tg(404, "Not Found")),  # a token that names no bot
    Row(AuthFailed, "401", 401, "<html>Unauthorized</html>"),  # no error_code: the status
    Row(
        RecipientUnavailable,
        "403",
        to="blocked",
        message="telegram sendMessage: Forbidden: bot was blocked by the user",
    ),
    Row(RecipientUnavailable, "403", 403, ""),
    Row(RecipientUnavailable, "400", to="missing"),
    # Moved again while following a move: not processed, try again later.
    Row(ProviderUnavailable, "400", 400, MOVED, times=2),
    Row(InvalidContent, "400", 400, tg(400, "Bad Request: message is too long")),
    Row(InvalidContent, "409", 409, tg(409, "Conflict: terminated")),
    Row(RateLimited, "429", to="flood", retry_after=FLOOD_RETRY_AFTER),
    Row(RateLimited, "429", 429, tg(429, "Too Many Requests", retry_after=35), retry_after=35),
    Row(RateLimited, "429", 429, "", headers={"Retry-After": "9"}, retry_after=9),
    Row(ProviderUnavailable, "502", 502, "<html>Bad Gateway</html>", in_doubt=True),
    Row(ProviderUnavailable, "500", 500, tg(500, "Internal Server Error"), in_doubt=True),
    # A 2xx without a result may have been sent; a redirect (not followed) was not.
    Row(ProviderUnavailable, "200", 200, {"ok": True}, in_doubt=True),
    Row(ProviderUnavailable, "302", 302, "", message="telegram sendMessage: HTTP 302"),
]


def test_the_table_keys() -> None:
    assert set(ERRORS) == {401, 404, 403, "chat not found", MIGRATED}


@pytest.mark.parametrize("row", support.rows(ANSWERS))
def test_telegram_answers_become_errors(sandbox: Sandbox, row: Row) -> None:
    channel = TelegramChannel(
        id="tg", type="telegram", bot_token=SecretStr(TOKEN), base_url=sandbox.url
    )
    out = support.outbound(text(), channel_id="tg", recipient=row.to or "4242")
    with closing(TelegramAdapter(channel, ClientPool(ssl_context=SHARED_SSL))) as adapter:
        support.answer_row(sandbox, "telegram", adapter, out, row, secrets=[TOKEN, "987654"])
