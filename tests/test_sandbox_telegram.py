"""TelegramAdapter against the sandbox's Telegram Bot API, over real HTTP."""

from __future__ import annotations

from contextlib import closing
from functools import partial
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from herald.adapters.http import ClientPool
from herald.adapters.telegram import TelegramAdapter
from herald.config import TelegramChannel
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
from herald.testing.sandbox.server import FLOOD_RETRY_AFTER
from herald.testing.sandbox.telegram import MIGRATED_CHAT_ID
from tests import adapter_support as support
from tests.adapter_support import FAMILY, adapter_fixture, closed_port, sandbox_fixture, send, text

TOKEN = "987654:AAH-sandbox-secret-token_xyz"

sandbox = sandbox_fixture(telegram=TOKEN)


def make_adapter(base_url: str, token: str = TOKEN, **pool: Any) -> TelegramAdapter:
    channel = TelegramChannel(
        id="tg", type="telegram", bot_token=SecretStr(token), base_url=base_url
    )
    return TelegramAdapter(channel, ClientPool(**pool))


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


def test_wrong_token_is_auth_failed(sandbox: Sandbox) -> None:
    with (
        closing(make_adapter(sandbox.url, token="111:wrong-token")) as adapter,
        pytest.raises(AuthFailed) as caught,
    ):
        send(adapter, outbound(text()))
    assert caught.value.provider_code == "401"
    assert caught.value.message == "telegram sendMessage: Unauthorized"
    assert "wrong-token" not in str(caught.value)


@pytest.mark.parametrize(
    ("chat", "error", "code", "description"),
    [
        ("blocked", RecipientUnavailable, "403", "Forbidden: bot was blocked by the user"),
        ("missing", RecipientUnavailable, "400", "Bad Request: chat not found"),
    ],
)
def test_unreachable_recipients(
    adapter: TelegramAdapter, chat: str, error: type[SendError], code: str, description: str
) -> None:
    exc = fail(adapter, outbound(text(), recipient=chat))
    assert type(exc) is error
    assert exc.provider_code == code
    assert exc.message == f"telegram sendMessage: {description}"
    assert not exc.retryable


def test_provider_refusing_the_content_is_invalid_content(
    sandbox: Sandbox, adapter: TelegramAdapter
) -> None:
    sandbox.fail_next(
        "telegram",
        400,
        {"ok": False, "error_code": 400, "description": "Bad Request: message is too long"},
    )
    exc = fail(adapter, outbound(text()))
    assert type(exc) is InvalidContent
    assert exc.provider_code == "400"
    assert "message is too long" in exc.message


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


def test_flood_is_rate_limited_with_retry_after(sandbox: Sandbox, adapter: TelegramAdapter) -> None:
    exc = fail(adapter, outbound(text(), recipient="flood"))
    assert type(exc) is RateLimited
    assert exc.retry_after == FLOOD_RETRY_AFTER
    assert exc.provider_code == "429"
    assert exc.retryable

    sandbox.fail_next(
        "telegram",
        429,
        {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 35",
            "parameters": {"retry_after": 35},
        },
    )
    exc = fail(adapter, outbound(text()))
    assert isinstance(exc, RateLimited)
    assert exc.retry_after == 35


def test_server_error_is_provider_unavailable_in_doubt(
    sandbox: Sandbox, adapter: TelegramAdapter
) -> None:
    sandbox.fail_next("telegram", 502, "<html>Bad Gateway</html>")
    exc = fail(adapter, outbound(text()))
    assert type(exc) is ProviderUnavailable
    assert exc.in_doubt and exc.retryable
    assert exc.provider_code == "502"
    # The scripted answer was used once; the next send goes through.
    assert send(adapter, outbound(text())) == ["4242:1"]


def test_read_timeout_is_provider_unavailable_in_doubt(sandbox: Sandbox) -> None:
    sandbox.delay(2)
    with closing(make_adapter(sandbox.url, timeout=0.2)) as adapter:
        exc = fail(adapter, outbound(text()))
    assert type(exc) is ProviderUnavailable
    assert exc.in_doubt


def test_connection_refused_is_provider_unavailable_not_in_doubt() -> None:
    with closing(make_adapter(f"http://127.0.0.1:{closed_port()}")) as adapter:
        exc = fail(adapter, outbound(text()))
    assert type(exc) is ProviderUnavailable
    assert not exc.in_doubt
    assert exc.provider_code is None


def test_a_stopped_sandbox_refuses_even_kept_alive_connections(sandbox: Sandbox) -> None:
    with closing(make_adapter(sandbox.url)) as adapter:
        assert send(adapter, outbound(text())) == ["4242:1"]
        sandbox.stop()
        exc = fail(adapter, outbound(text()))
    assert isinstance(exc, ProviderUnavailable)


@pytest.mark.parametrize(
    ("status", "description", "expected"),
    [(404, "Not Found", AuthFailed), (409, "Conflict: terminated", InvalidContent)],
)
def test_other_4xx_answers_are_permanent(
    sandbox: Sandbox, adapter: TelegramAdapter, status: int, description: str, expected: type
) -> None:
    sandbox.fail_next(
        "telegram", status, {"ok": False, "error_code": status, "description": description}
    )
    exc = fail(adapter, outbound(text()))
    assert type(exc) is expected
    assert (exc.provider_code, exc.retryable) == (str(status), False)
