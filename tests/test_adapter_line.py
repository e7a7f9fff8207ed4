"""LineAdapter against the sandbox's LINE Messaging API, over real HTTP."""

from __future__ import annotations

import uuid
from functools import partial
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from herald.adapters.http import ClientPool
from herald.adapters.line import LineAdapter, retry_key
from herald.config import LineChannel
from herald.contract.errors import (
    AuthFailed,
    InvalidContent,
    ProviderUnavailable,
    QuotaExceeded,
    RateLimited,
    RecipientUnavailable,
)
from herald.contract.job import Attachment, CustomPayload, EmailMessage, MediaMessage, QuickReply
from herald.testing.sandbox import Sandbox
from herald.testing.sandbox.line import FIRST_MESSAGE_ID
from herald.testing.sandbox.server import FLOOD_RETRY_AFTER
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

TOKEN = "line-test-channel-access-token-xyz"
USER = "U4af4980629a1b2c3d4e5f60718293a4b"
JOB = "run-1:step-1"
PATH = "/v2/bot/message/push"

sandbox = sandbox_fixture(line=TOKEN)


def make_adapter(base_url: str) -> LineAdapter:
    channel = LineChannel(
        id="line", type="line", channel_access_token=SecretStr(TOKEN), base_url=base_url
    )
    return LineAdapter(channel, ClientPool(ssl_context=SHARED_SSL))


adapter = adapter_fixture(make_adapter)
outbound = partial(support.outbound, channel_id="line", recipient=USER, job_id=JOB)


def image(n: int, caption: str | None = None) -> Attachment:
    return Attachment(url=f"https://files.example/{n}.png", kind="image", caption=caption)


def msg_id(n: int) -> str:
    return str(FIRST_MESSAGE_ID + n)


# --- success ----------------------------------------------------------------------------------


def test_text_is_pushed_with_bearer_and_a_deterministic_retry_key(
    sandbox: Sandbox, adapter: LineAdapter
) -> None:
    assert send(adapter, outbound(text())) == [msg_id(1)]

    [seen] = sandbox.requests
    assert (seen.provider, seen.method, seen.path, seen.duplicate) == ("line", "POST", PATH, False)
    assert seen.headers["authorization"] == f"Bearer {TOKEN}"
    assert seen.headers["content-type"] == "application/json"
    key = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{JOB}:0"))
    assert seen.headers["x-line-retry-key"] == key == retry_key(JOB, 0)
    assert seen.json() == {"to": USER, "messages": [{"type": "text", "text": FAMILY}]}
    assert FAMILY.encode() in seen.body  # the ZWJ sequence, byte for byte


def test_a_resend_of_the_same_part_is_the_accepted_request(
    sandbox: Sandbox, adapter: LineAdapter
) -> None:
    # Given a first request that LINE accepted under this job's key (a lost answer)
    first = httpx.post(
        f"{sandbox.url}{PATH}",
        json={"to": USER, "messages": [{"type": "text", "text": "hi"}]},
        headers={"authorization": f"Bearer {TOKEN}", "x-line-retry-key": retry_key(JOB, 0)},
    )
    accepted = first.headers["x-line-request-id"]
    # When the job is sent again, Then the 409 counts as sent, with the accepted request id
    assert send(adapter, outbound(text("hi"))) == [accepted]
    assert [r.duplicate for r in sandbox.requests] == [False, True]
    # A different job has its own key.
    assert send(adapter, outbound(text("hi"), job_id="run-1:step-2")) == [msg_id(2)]


def test_a_409_with_sent_messages_gives_their_ids_and_without_header_none(
    sandbox: Sandbox, adapter: LineAdapter
) -> None:
    body = {"message": "The retry key is already accepted"}
    sandbox.fail_next("line", 409, {**body, "sentMessages": [{"id": "9", "quoteToken": "q"}]})
    assert send(adapter, outbound(text())) == ["9"]
    sandbox.fail_next("line", 409, body)
    assert send(adapter, outbound(text())) == []


def test_quick_replies_are_message_actions_or_postbacks(
    sandbox: Sandbox, adapter: LineAdapter
) -> None:
    replies = [QuickReply(title="Yes 👍", payload="YES"), QuickReply(title="No")]

    send(adapter, outbound(text("Confirm?", quick_replies=replies)))

    assert sandbox.requests[0].json()["messages"][0]["quickReply"] == {
        "items": [
            {
                "type": "action",
                "action": {
                    "type": "postback",
                    "label": "Yes 👍",
                    "data": "YES",
                    "displayText": "Yes 👍",
                },
            },
            {"type": "action", "action": {"type": "message", "label": "No", "text": "No"}},
        ]
    }


def test_media_is_up_to_five_messages_per_push_with_captions_after_images(
    sandbox: Sandbox, adapter: LineAdapter
) -> None:
    message = MediaMessage(
        type="media", attachments=[image(1, "Look 👀"), image(2), image(3), image(4), image(5)]
    )
    plan = adapter.plan(outbound(message))
    assert [len(p.payload.body["messages"]) for p in plan] == [5, 1]

    ids = send(adapter, outbound(message))

    assert ids == [msg_id(n) for n in range(1, 7)]
    first, second = (r.json()["messages"] for r in sandbox.requests)
    assert first[:2] == [
        {
            "type": "image",
            "originalContentUrl": "https://files.example/1.png",
            "previewImageUrl": "https://files.example/1.png",
        },
        {"type": "text", "text": "Look 👀"},
    ]
    assert second == [
        {
            "type": "image",
            "originalContentUrl": "https://files.example/5.png",
            "previewImageUrl": "https://files.example/5.png",
        }
    ]
    keys = [r.headers["x-line-retry-key"] for r in sandbox.requests]
    assert keys == [retry_key(JOB, 0), retry_key(JOB, 1)]


def test_custom_payload_is_merged_and_a_lone_message_is_wrapped(
    sandbox: Sandbox, adapter: LineAdapter
) -> None:
    sticker = {"type": "sticker", "packageId": "446", "stickerId": "1988"}
    merged = CustomPayload(
        type="custom_payload",
        payload={"to": "someone-else", "messages": [sticker], "notificationDisabled": True},
    )
    send(adapter, outbound(merged))
    send(adapter, outbound(CustomPayload(type="custom_payload", payload=sticker)))
    assert [r.json() for r in sandbox.requests] == [
        {"to": USER, "messages": [sticker], "notificationDisabled": True},
        {"to": USER, "messages": [sticker]},
    ]


# --- limits, checked before any request -------------------------------------------------------


def test_limits_are_refused_before_any_request(sandbox: Sandbox, adapter: LineAdapter) -> None:
    # 2,501 emoji are 5,002 UTF-16 units.
    with pytest.raises(InvalidContent, match="text is 5002 UTF-16 code units; the limit is 5000"):
        adapter.plan(outbound(text("😀" * 2501)))
    many = [QuickReply(title=str(n)) for n in range(14)]
    with pytest.raises(InvalidContent, match="14 quick replies; the limit is 13"):
        adapter.plan(outbound(text("Pick", quick_replies=many)))
    with pytest.raises(InvalidContent, match="label is 21 UTF-16 code units; the limit is 20"):
        adapter.plan(outbound(text("Pick", quick_replies=[QuickReply(title="x" * 21)])))
    six = CustomPayload(type="custom_payload", payload={"messages": [{"type": "text"}] * 6})
    with pytest.raises(InvalidContent, match="1 to 5 messages"):
        adapter.plan(outbound(six))
    with pytest.raises(InvalidContent, match="line cannot send email"):
        adapter.plan(outbound(EmailMessage(type="email", subject="Hi", html="<p>Hi</p>")))
    assert sandbox.requests == []
    assert send(adapter, outbound(text("😀" * 2500))) == [msg_id(1)]  # exactly the limit


@pytest.mark.parametrize(
    ("attachment", "match"),
    [
        (Attachment(url="https://f.example/a.pdf", kind="file"), "cannot send a file attachment"),
        (Attachment(url="https://f.example/a.mp4", kind="video"), "a video attachment"),
        (Attachment(url="https://f.example/a.mp3", kind="audio"), "an? audio attachment"),
        (Attachment(url="http://f.example/a.png", kind="image"), "must be https"),
    ],
)
def test_media_line_cannot_take_is_invalid_content(
    sandbox: Sandbox, adapter: LineAdapter, attachment: Attachment, match: str
) -> None:
    with pytest.raises(InvalidContent, match=match):
        adapter.plan(outbound(MediaMessage(type="media", attachments=[attachment])))
    assert sandbox.requests == []


# --- errors -----------------------------------------------------------------------------------


def bad(prop: str) -> dict[str, Any]:
    return {
        "message": "The request body has 1 error(s)",
        "details": [{"message": "bad", "property": prop}],
    }


RATE = "The API rate limit has been exceeded. Try again later."
#: LINE's answers (docs/channels/line.md#errors): its own two rows, then the status rule.
ERRORS = [
    Row(RecipientUnavailable, "400", to="missing"),  # "The property, 'to', ..." without details
    Row(
        RecipientUnavailable,
        "400",
        to="invalid",
        message="line push: The request body has 1 error(s) (to: Invalid user ID)",
    ),
    Row(RecipientUnavailable, "400", 400, bad("to")),
    Row(QuotaExceeded, "429", to="monthly-limit"),
    Row(QuotaExceeded, "429", 429, {"message": "You have reached your monthly limit."}),
    Row(
        InvalidContent,
        "400",
        400,
        bad("messages[0].text"),
        message="line push: The request body has 1 error(s) (messages[0].text: bad)",
    ),
    Row(AuthFailed, "403", 403, {"message": "Not authorized to use this API"}),
    *(Row(InvalidContent, str(s), s, {"message": "Gone"}) for s in (409, 410, 413, 415)),
    Row(RateLimited, "429", to="flood", retry_after=FLOOD_RETRY_AFTER),
    Row(RateLimited, "429", 429, {"message": RATE}, message=f"line push: {RATE}"),
    Row(ProviderUnavailable, "500", 500, {"message": "Internal server error"}, in_doubt=True),
    Row(ProviderUnavailable, "503", 503, "", in_doubt=True, message="line push: HTTP 503"),
    # A 2xx without sentMessages may have been sent (a retry reuses the key); a 3xx was not.
    Row(ProviderUnavailable, "200", 200, {"sent": []}, in_doubt=True),
    Row(ProviderUnavailable, "302", 302, ""),
]


@pytest.mark.parametrize("row", support.rows(ERRORS))
def test_line_answers_become_errors(sandbox: Sandbox, adapter: LineAdapter, row: Row) -> None:
    out = outbound(text(), recipient=row.to or USER)
    support.answer_row(sandbox, "line", adapter, out, row, secrets=[TOKEN])


def test_a_retry_after_a_server_error_reuses_the_key(
    sandbox: Sandbox, adapter: LineAdapter
) -> None:
    sandbox.fail_next("line", 500, {"message": "Internal server error"})
    out = outbound(text())
    [part] = adapter.plan(out)
    with pytest.raises(ProviderUnavailable):
        adapter.send_part(out, part)
    assert adapter.send_part(out, part) == [msg_id(1)]
    first, second = sandbox.requests
    assert first.headers["x-line-retry-key"] == second.headers["x-line-retry-key"]


def test_the_sandbox_validates_key_and_body(sandbox: Sandbox) -> None:
    auth = {"authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=sandbox.url, headers=auth) as client:
        key = client.post(
            PATH,
            json={"to": USER, "messages": [{"type": "text", "text": "x"}]},
            headers={"x-line-retry-key": "not-a-uuid"},
        )
        six = client.post(PATH, json={"to": USER, "messages": [{"type": "text", "text": "x"}] * 6})
        long = client.post(
            PATH, json={"to": USER, "messages": [{"type": "text", "text": "x" * 5001}]}
        )
    assert key.status_code == 400
    assert six.json()["details"] == [
        {"message": "Size must be between 1 and 5", "property": "messages"}
    ]
    assert long.json() == {
        "message": "The request body has 1 error(s)",
        "details": [
            {"message": "Length must be between 0 and 5000", "property": "messages[0].text"}
        ],
    }
