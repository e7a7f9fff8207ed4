"""The custom channel's error table through the sandbox (the rest: test_sandbox_custom).

A receiver has no codes of its own: the status rule is its whole table."""

from __future__ import annotations

import base64
from contextlib import closing

import pytest
from pydantic import SecretStr

from herald.adapters.custom import ERRORS, CustomAdapter
from herald.adapters.http import ClientPool
from herald.config import CustomChannel
from herald.contract.errors import AuthFailed, InvalidContent, ProviderUnavailable, RateLimited
from herald.testing.sandbox import Sandbox
from herald.testing.sandbox.server import FLOOD_RETRY_AFTER
from tests import adapter_support as support
from tests.adapter_support import Row, sandbox_fixture, text
from tests.adapter_support import send_one as send

SECRET = "whsec_" + base64.b64encode(b"a-test-key-for-the-custom-channel").decode()
WHAT = "custom webhook"

sandbox = sandbox_fixture(custom=SECRET)

#: docs/channels/custom.md#errors.
ANSWERS = [
    Row(AuthFailed, "403", to="blocked"),
    Row(AuthFailed, "401", 401, {"error": "who?"}, message=f"{WHAT}: HTTP 401: who?"),
    Row(RateLimited, "429", to="flood", retry_after=FLOOD_RETRY_AFTER),
    Row(RateLimited, "429", 429, {"error": "slow"}, headers={"Retry-After": "7"}, retry_after=7),
    *(
        Row(InvalidContent, str(s), s, {"error": "nope"}, message=f"{WHAT}: HTTP {s}: nope")
        for s in (400, 404, 410, 422)
    ),
    Row(InvalidContent, "400", 400, {"message": "bad"}, message=f"{WHAT}: HTTP 400: bad"),
    *(
        Row(ProviderUnavailable, str(s), s, "<html>down</html>", in_doubt=True)
        for s in (500, 502, 503)
    ),
    Row(ProviderUnavailable, "503", 503, "", in_doubt=True, message=f"{WHAT}: HTTP 503"),
    Row(ProviderUnavailable, "302", 302, ""),  # redirects are not followed: not sent
]


def test_the_status_rule_is_the_whole_table() -> None:
    assert ERRORS == {}


@pytest.mark.parametrize("row", support.rows(ANSWERS))
def test_webhook_answers_become_errors(sandbox: Sandbox, row: Row) -> None:
    channel = CustomChannel(
        id="hook", type="custom", url=f"{sandbox.url}/webhook/herald", secret=SecretStr(SECRET)
    )
    out = support.outbound(text(), channel_id="hook", recipient=row.to or "user-7")
    secrets = [SECRET.removeprefix("whsec_")]
    with closing(CustomAdapter(channel, ClientPool())) as adapter:
        support.answer_row(sandbox, "custom", adapter, out, row, secrets=secrets, send=send)
