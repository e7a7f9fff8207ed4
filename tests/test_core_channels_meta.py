"""WhatsApp, Messenger and Instagram jobs through the send core and the sandbox: the exact
requests on the wire, templates, quick replies, media part by part, a closed window."""

from __future__ import annotations

import json
import random
import uuid
from typing import Any

import pytest

from herald.adapters.meta.graph import GRAPH_VERSION
from herald.testing.sandbox import Recorded, Sandbox
from tests.conftest import Core, make_job


def received(sandbox: Sandbox, provider: str, recipient: str) -> list[Recorded]:
    """Requests of ``provider`` to ``recipient`` (WhatsApp ``to``, Send API ``recipient.id``)."""
    found = []
    for seen in sandbox.requests:
        if seen.provider != provider:
            continue
        body = seen.json()
        to = body.get("to") if provider == "whatsapp" else body.get("recipient", {}).get("id")
        if to == recipient:
            found.append(seen)
    return found


def wire(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def phone() -> str:
    return "3519" + "".join(random.choices("0123456789", k=8))


def test_whatsapp_text_is_sent(core: Core, sandbox: Sandbox) -> None:
    number = phone()
    job = make_job([{"channel_id": "wa", "identifier": f"+{number}"}])
    job["message"]["text"] = "🧑🏽‍🚀 Hi $contact.firstname"
    event = core.send(job)

    assert (event.event, event.data.channel_id, event.data.channel_type) == (
        "message.sent",
        "wa",
        "whatsapp",
    )
    [seen] = received(sandbox, "whatsapp", number)
    [wamid] = event.data.provider_message_ids
    assert wamid.startswith("wamid.sandbox.")
    assert seen.path == f"/{GRAPH_VERSION}/106540352242922/messages"
    assert seen.headers["authorization"].startswith("Bearer ")
    assert seen.body == wire(
        {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": number,
            "type": "text",
            "text": {"body": "🧑🏽‍🚀 Hi Ana", "preview_url": False},
        }
    )


def test_whatsapp_template_renders_variables_into_parameters(core: Core, sandbox: Sandbox) -> None:
    number = phone()
    job = make_job([{"channel_id": "wa", "identifier": number}], failure_branch=True)
    job["variables"] = {"trigger": {"order_id": "A-17"}}
    job["channel_responses"] = {
        "wa": {
            "type": "whatsapp_template",
            "name": "order_update",
            "language": "pt_PT",
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": "$contact.firstname"},
                        {"type": "text", "text": "${trigger.order_id}"},
                    ],
                }
            ],
        }
    }
    event = core.send(job)

    assert (event.event, event.data.next, event.data.attempts) == ("message.sent", "success", 1)
    [seen] = received(sandbox, "whatsapp", number)
    assert seen.body == wire(
        {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": number,
            "type": "template",
            "template": {
                "name": "order_update",
                "language": {"code": "pt_PT"},
                "components": [
                    {
                        "type": "body",
                        "parameters": [
                            {"type": "text", "text": "Ana"},
                            {"type": "text", "text": "A-17"},
                        ],
                    }
                ],
            },
        }
    )
    assert event.data.provider_message_ids[0].startswith("wamid.sandbox.")


@pytest.mark.parametrize(("failure_branch", "expected_next"), [(True, "failure"), (False, "end")])
def test_whatsapp_131047_is_window_closed(
    core: Core, failure_branch: bool, expected_next: str
) -> None:
    job = make_job([{"channel_id": "wa", "identifier": "0131047"}], failure_branch=failure_branch)
    event = core.send(job)

    assert (event.event, event.data.outcome, event.data.next) == (
        "message.failed",
        "failed",
        expected_next,
    )
    error = event.data.error
    assert error is not None
    assert (error.code, error.retryable, error.provider_code) == ("window_closed", False, "131047")
    assert "Re-engagement message" in error.message
    assert event.data.attempts == 1
    assert event.data.provider_message_ids == []


def test_messenger_text_with_quick_replies(core: Core, sandbox: Sandbox) -> None:
    psid = f"psid-{uuid.uuid4().hex[:10]}"
    job = make_job([{"channel_id": "fb", "identifier": psid}])
    job["message"] = {
        "type": "text",
        "text": "Hi $contact.firstname, rate us?",
        "quick_replies": [{"title": "👍 Good", "payload": "good"}, {"title": "Bad"}],
    }
    event = core.send(job)

    assert (event.event, event.data.channel_type) == ("message.sent", "messenger")
    [seen] = received(sandbox, "messenger", psid)
    assert seen.path == f"/{GRAPH_VERSION}/me/messages?access_token=<token>"
    assert seen.body == wire(
        {
            "recipient": {"id": psid},
            "messaging_type": "RESPONSE",
            "message": {
                "text": "Hi Ana, rate us?",
                "quick_replies": [
                    {"content_type": "text", "title": "👍 Good", "payload": "good"},
                    {"content_type": "text", "title": "Bad", "payload": "Bad"},
                ],
            },
        }
    )
    [message_id] = event.data.provider_message_ids
    assert message_id.startswith("m_sandbox-messenger-")


def test_instagram_media_is_sent_part_by_part(core: Core, sandbox: Sandbox) -> None:
    igsid = f"igsid-{uuid.uuid4().hex[:10]}"
    job = make_job([{"channel_id": "ig", "identifier": igsid}])
    job["message"] = {
        "type": "media",
        "attachments": [
            {
                "url": "https://files.example/a.jpg",
                "kind": "image",
                "caption": "For $contact.firstname",
            },
            {"url": "https://files.example/b.mp4", "kind": "video"},
        ],
    }
    event = core.send(job)

    assert (event.event, event.data.channel_type, event.data.attempts) == (
        "message.sent",
        "instagram",
        1,
    )
    seen = received(sandbox, "instagram", igsid)
    assert [r.path for r in seen] == ["/v21.0/17841400000000001/messages"] * 3
    head = {"recipient": {"id": igsid}, "messaging_type": "RESPONSE"}
    assert [r.body for r in seen] == [
        wire(
            {
                **head,
                "message": {
                    "attachment": {
                        "type": "image",
                        "payload": {"url": "https://files.example/a.jpg", "is_reusable": True},
                    }
                },
            }
        ),
        wire({**head, "message": {"text": "For Ana"}}),
        wire(
            {
                **head,
                "message": {
                    "attachment": {
                        "type": "video",
                        "payload": {"url": "https://files.example/b.mp4", "is_reusable": True},
                    }
                },
            }
        ),
    ]
    ids = event.data.provider_message_ids
    assert len(ids) == 3 and len(set(ids)) == 3
    assert all(i.startswith("m_sandbox-instagram-") for i in ids)
