"""Telegram's error table through the sandbox (the rest of the adapter: test_sandbox_telegram)."""

from __future__ import annotations

from contextlib import closing
from typing import Any

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
from herald.testing.sandbox import Sandbox
from herald.testing.sandbox.server import FLOOD_RETRY_AFTER
from herald.testing.sandbox.telegram import MIGRATED_CHAT_ID
from tests import adapter_support as support
from tests.adapter_support import Row, sandbox_fixture, text

TOKEN = "987654:AAH-sandbox-secret-token_xyz"

sandbox = sandbox_fixture(telegram=TOKEN)


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
    with closing(TelegramAdapter(channel, ClientPool())) as adapter:
        support.answer_row(sandbox, "telegram", adapter, out, row, secrets=[TOKEN, "987654"])
