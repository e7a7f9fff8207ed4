"""CustomAdapter against the sandbox's Standard Webhooks receiver, over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from contextlib import closing
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr, ValidationError
from standardwebhooks.webhooks import Webhook

from herald.adapters.base import Outbound
from herald.adapters.custom import ERRORS, CustomAdapter, webhook_id
from herald.adapters.http import ClientPool
from herald.config import CustomChannel
from herald.contract.errors import AuthFailed, InvalidContent, ProviderUnavailable, RateLimited
from herald.contract.job import Attachment, MediaMessage, TextMessage, Workflow
from herald.testing.sandbox import Sandbox
from herald.testing.sandbox.server import FLOOD_RETRY_AFTER
from tests import adapter_support as support
from tests.adapter_support import SHARED_SSL, Row, adapter_fixture, sandbox_fixture, text
from tests.adapter_support import SHORT_FAMILY as FAMILY
from tests.adapter_support import send_one as send

SECRET = "whsec_" + base64.b64encode(b"a-test-key-for-the-custom-channel").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"somebody-else's-key").decode()

sandbox = sandbox_fixture(custom=SECRET)
WHAT = "custom webhook"
#: Hypothesis' example database would write a .hypothesis folder into the repo.
props = settings(database=None, max_examples=300, deadline=None)


def make_adapter(base_url: str, secret: str = SECRET, url: str | None = None) -> CustomAdapter:
    channel = CustomChannel(
        id="hook",
        type="custom",
        url=url or f"{base_url}/webhook/herald",
        secret=SecretStr(secret),
        base_url=base_url if url else None,
    )
    return CustomAdapter(channel, ClientPool(ssl_context=SHARED_SSL))


adapter = adapter_fixture(make_adapter)
hook_outbound = partial(
    support.outbound,
    channel_id="hook",
    contact_id="c-42",
    recipient="user-7",
    workflow=Workflow(workflow_id="wf-1", run_id="run-1", step_id="step-1"),
)
fail = partial(support.fail, secrets=[SECRET.removeprefix("whsec_")], send=send)


def outbound(message: Any = None, **fields: Any) -> Outbound:
    """A job for the hook: FAMILY as text unless another message is given."""
    return hook_outbound(message or text(FAMILY), **fields)


# --- success ----------------------------------------------------------------------------------


def test_body_and_headers_follow_the_contract_and_verify(
    sandbox: Sandbox, adapter: CustomAdapter
) -> None:
    ids = send(adapter, outbound())

    assert ids == ["wh-1"]
    [seen] = sandbox.requests
    assert (seen.provider, seen.method, seen.path) == ("custom", "POST", "/webhook/herald")
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["webhook-id"] == "run-1:step-1"
    # The receiver's own library accepts the signature over the bytes received.
    assert Webhook(SECRET).verify(seen.body, seen.headers) == seen.json()
    stamp = int(seen.headers["webhook-timestamp"])
    assert abs(time.time() - stamp) < 5
    assert seen.json() == {
        "type": "message.send",
        "timestamp": datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "data": {
            "job_id": "run-1:step-1",
            "workflow": {"workflow_id": "wf-1", "run_id": "run-1", "step_id": "step-1"},
            "contact_id": "c-42",
            "channel_id": "hook",
            "recipient": "user-7",
            "message": {"type": "text", "text": FAMILY},
        },
    }
    # Compact JSON, emoji as UTF-8 (the ZWJ sequence intact).
    assert b": " not in seen.body and FAMILY.encode() in seen.body


def test_media_message_is_dumped_without_nulls(sandbox: Sandbox, adapter: CustomAdapter) -> None:
    media = MediaMessage(
        type="media",
        attachments=[
            Attachment(url="https://f.example/a.png", kind="image", caption="a"),
            Attachment(url="https://f.example/b.pdf", kind="file"),
        ],
    )
    send(adapter, outbound(media))

    assert sandbox.requests[0].json()["data"]["message"] == {
        "type": "media",
        "attachments": [
            {"url": "https://f.example/a.png", "kind": "image", "caption": "a"},
            {"url": "https://f.example/b.pdf", "kind": "file"},
        ],
    }


def test_a_job_without_workflow_sends_null(sandbox: Sandbox, adapter: CustomAdapter) -> None:
    out = Outbound(
        job_id="j-1",
        channel_id="hook",
        contact_id="c-1",
        recipient="u",
        message=TextMessage(type="text", text="hi"),
    )
    send(adapter, out)
    assert sandbox.requests[0].json()["data"]["workflow"] is None


def test_resends_are_deduplicated_by_webhook_id(sandbox: Sandbox, adapter: CustomAdapter) -> None:
    first = send(adapter, outbound())
    again = send(adapter, outbound())
    other = send(adapter, outbound(job_id="run-1:step-2"))

    assert first == again == ["wh-1"]
    assert other == ["wh-2"]
    assert [r.duplicate for r in sandbox.requests] == [False, True, False]


@pytest.mark.parametrize(
    ("job_id", "header"),
    [
        ("run-1:step-1", "run-1:step-1"),  # printable ASCII: as it is
        ("inner space", "inner space"),
        ("pedido-ção-7", "pedido-%C3%A7%C3%A3o-7"),  # UTF-8, percent-encoded
        ("50%-off:1", "50%25-off:1"),  # "%" itself, so that decoding is exact
        (" padded ", "%20padded%20"),  # outer spaces, which HTTP trims
    ],
)
def test_webhook_id_is_the_job_id_as_a_header_can_carry_it(
    sandbox: Sandbox, adapter: CustomAdapter, job_id: str, header: str
) -> None:
    assert send(adapter, outbound(job_id=job_id)) == ["wh-1"]
    [seen] = sandbox.requests
    assert seen.headers["webhook-id"] == header
    assert unquote(header) == job_id
    assert seen.json()["data"]["job_id"] == job_id  # the body keeps the exact id
    assert Webhook(SECRET).verify(seen.body, seen.headers) == seen.json()


def test_job_ids_alike_once_encoded_stay_apart(sandbox: Sandbox, adapter: CustomAdapter) -> None:
    # "café" and the ASCII id that spells its encoding are two jobs: never one resend.
    assert send(adapter, outbound(job_id="café")) == ["wh-1"]
    assert send(adapter, outbound(job_id="caf%C3%A9")) == ["wh-2"]
    assert [r.duplicate for r in sandbox.requests] == [False, False]


@props
@given(st.text(alphabet=st.characters(exclude_categories=["Cs"])))
def test_webhook_id_is_header_safe_and_decodes_to_the_job_id(job_id: str) -> None:
    header = webhook_id(job_id)
    assert all(" " <= c <= "~" for c in header)
    assert header == header.strip()
    assert unquote(header) == job_id


def test_base_url_replaces_scheme_and_host(sandbox: Sandbox) -> None:
    url = "https://hooks.example/webhook/in?src=herald"
    with closing(make_adapter(sandbox.url, url=url)) as adapter:
        assert send(adapter, outbound()) == ["wh-1"]
    assert sandbox.requests[0].path == "/webhook/in?src=herald"


@pytest.mark.parametrize(
    ("status", "body", "ids"),
    [
        (200, {"id": 17}, ["17"]),
        (202, {"message_id": "m-1", "id": "ignored"}, ["m-1"]),
        (204, b"", []),
        (200, "ok", []),
    ],
)
def test_ids_come_from_message_id_or_id(
    sandbox: Sandbox, adapter: CustomAdapter, status: int, body: Any, ids: list[str]
) -> None:
    sandbox.fail_next("custom", status, body)
    assert send(adapter, outbound()) == ids


# --- errors -----------------------------------------------------------------------------------


def test_scripted_answers_are_consumed_in_order(sandbox: Sandbox, adapter: CustomAdapter) -> None:
    sandbox.fail_next("custom", 503, {"error": "busy"}, times=2)
    sandbox.fail_next("custom", 429, {"error": "slow"}, headers={"Retry-After": "7"})

    assert isinstance(fail(adapter, outbound()), ProviderUnavailable)
    assert isinstance(fail(adapter, outbound()), ProviderUnavailable)
    limited = fail(adapter, outbound())
    assert isinstance(limited, RateLimited) and limited.retry_after == 7
    assert send(adapter, outbound()) == ["wh-1"]
    assert len(sandbox.requests) == 4


def test_a_malformed_secret_is_refused_by_the_channels_file(sandbox: Sandbox) -> None:
    with pytest.raises(ValidationError, match="whsec_<base64 key>"):
        make_adapter(sandbox.url, secret="whsec_not*base64!")
    assert sandbox.requests == []


# --- the sandbox's own checks -----------------------------------------------------------------


def signed(secret: str, msg_id: str, stamp: int, body: bytes) -> dict[str, str]:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
        "content-type": "application/json",
    }


def contract_body(stamp: int) -> bytes:
    instant = datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    data = dict.fromkeys(["job_id", "workflow", "contact_id", "channel_id", "message"])
    return json.dumps(
        {"type": "message.send", "timestamp": instant, "data": {**data, "recipient": "u"}}
    ).encode()


def test_sandbox_refuses_stale_missing_and_forged_signatures(sandbox: Sandbox) -> None:
    now = int(time.time())
    stale = now - 301
    url = f"{sandbox.url}/webhook"
    with httpx.Client() as client:
        fresh = client.post(
            url, content=contract_body(now), headers=signed(SECRET, "a", now, contract_body(now))
        )
        old = client.post(
            url,
            content=contract_body(stale),
            headers=signed(SECRET, "b", stale, contract_body(stale)),
        )
        forged = client.post(
            url,
            content=contract_body(now),
            headers=signed(OTHER_SECRET, "c", now, contract_body(now)),
        )
        unsigned = client.post(url, content=contract_body(now))
    assert fresh.status_code == 200 and fresh.json() == {"message_id": "wh-1"}
    for answer in (old, forged, unsigned):
        assert answer.status_code == 401
        assert answer.json() == {"error": "invalid signature"}


def test_sandbox_refuses_a_body_off_contract(sandbox: Sandbox) -> None:
    now = int(time.time())
    body = json.dumps({"type": "message.send", "data": {}}).encode()
    with httpx.Client() as client:
        answer = client.post(
            f"{sandbox.url}/webhook", content=body, headers=signed(SECRET, "x", now, body)
        )
    assert answer.status_code == 400
    assert "exactly type, timestamp and data" in answer.json()["error"]


# --- the error table ----------------------------------------------------------------------

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
    with closing(CustomAdapter(channel, ClientPool(ssl_context=SHARED_SSL))) as adapter:
        support.answer_row(sandbox, "custom", adapter, out, row, secrets=secrets, send=send)
