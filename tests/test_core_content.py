"""Content through the send core on every channel: rendering, emoji intact, per-channel
content, media parts in order and never resent once accepted."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import pytest

from herald.config import Settings
from herald.testing.sandbox import Sandbox
from tests.conftest import Core, make_job, sandbox_requests
from tests.smtp_server import SmtpServer

EMOJI = "👩🏽‍💻 🏳️‍🌈 🇵🇹 👍🏿 🤖"

#: channel id -> (sandbox provider, a fresh identifier for the contact)
CHANNELS: dict[str, tuple[str, Any]] = {
    "tg": ("telegram", lambda: str(uuid.uuid4().int % 10**9)),
    "hook": ("custom", lambda: f"crm-{uuid.uuid4().hex[:8]}"),
    "wa": ("whatsapp", lambda: f"35191{uuid.uuid4().int % 10**7:07d}"),
    "fb": ("messenger", lambda: str(uuid.uuid4().int % 10**15)),
    "ig": ("instagram", lambda: str(uuid.uuid4().int % 10**15)),
    "sms": ("twilio_sms", lambda: f"+35191{uuid.uuid4().int % 10**7:07d}"),
    "line": ("line", lambda: "U" + uuid.uuid4().hex),
    "viber": ("viber", lambda: uuid.uuid4().hex[:16] + "=="),
    "sg": ("sendgrid", lambda: f"ana-{uuid.uuid4().hex[:8]}@example.com"),
}
MEDIA_CHANNELS = sorted(set(CHANNELS) - {"sg"})


def chat() -> str:
    """A fresh Telegram chat id."""
    return str(uuid.uuid4().int % 10**9)


def strings(value: Any) -> list[str]:
    """Every string inside a decoded JSON value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


def received_texts(sandbox: Sandbox, provider: str, recipient: str) -> list[str]:
    """The strings of every request to ``provider`` that names ``recipient``."""
    found = []
    for request in sandbox.requests:
        if request.provider != provider:
            continue
        try:
            decoded: Any = json.loads(request.body)
        except ValueError:
            decoded = parse_qs(request.body.decode())  # Twilio is form-encoded
        texts = strings(decoded)
        if any(recipient in text for text in texts):
            found += texts
    return found


# -- emoji and media on every channel ----------------------------------------------


@pytest.mark.parametrize("channel", sorted(CHANNELS))
def test_emoji_reach_every_provider_intact(channel: str, core: Core, sandbox: Sandbox) -> None:
    provider, identifier = CHANNELS[channel]
    recipient = identifier()
    job = make_job(
        [{"channel_id": channel, "identifier": recipient}],
        message={"type": "text", "text": f"{EMOJI} Hi $contact.firstname {EMOJI}"},
    )
    event = core.send(job)
    assert event.event == "message.sent", event.data.error
    expected = f"{EMOJI} Hi Ana {EMOJI}"
    assert any(expected in text for text in received_texts(sandbox, provider, recipient))


def test_emoji_reach_the_smtp_server_intact(core: Core, smtp_server: SmtpServer) -> None:
    recipient = f"ana-{uuid.uuid4().hex[:8]}@example.com"
    job = make_job(
        [{"channel_id": "mail", "identifier": recipient}],
        channel_responses={
            "mail": {"type": "email", "subject": f"{EMOJI} order", "html": f"<p>{EMOJI} Hi</p>"}
        },
    )
    assert core.send(job).event == "message.sent"
    [mail] = [m for m in smtp_server.messages if recipient in m.rcpt_tos]
    assert mail.message["Subject"] == f"{EMOJI} order"
    assert EMOJI in mail.message.get_body(("html",)).get_content()
    assert EMOJI in mail.message.get_body(("plain",)).get_content()


@pytest.mark.parametrize("channel", MEDIA_CHANNELS)
def test_media_reaches_every_provider(channel: str, core: Core, sandbox: Sandbox) -> None:
    provider, identifier = CHANNELS[channel]
    recipient = identifier()
    url = f"https://cdn.example/photo-{uuid.uuid4().hex[:6]}.png"  # the provider fetches it
    job = make_job(
        [{"channel_id": channel, "identifier": recipient}],
        message={
            "type": "media",
            "attachments": [{"url": url, "kind": "image", "caption": "For $contact.firstname"}],
        },
    )
    event = core.send(job)
    assert event.event == "message.sent", event.data.error
    assert event.data.provider_message_ids
    texts = received_texts(sandbox, provider, recipient)
    assert any(url in t for t in texts)
    assert any("For Ana" in t for t in texts)


@pytest.mark.parametrize("channel", ["sg", "mail"])
def test_media_on_email_channels_arrives_as_an_attachment(
    channel: str, core: Core, sandbox: Sandbox, smtp_server: SmtpServer
) -> None:
    recipient = f"ana-{uuid.uuid4().hex[:8]}@example.com"
    name = f"invoice-{uuid.uuid4().hex[:6]}.pdf"
    job = make_job(
        [{"channel_id": channel, "identifier": recipient}],
        message={
            "type": "media",
            "attachments": [
                {
                    "url": f"{sandbox.url}/files/3000/{name}",
                    "kind": "file",
                    "filename": name,
                    "caption": "Your invoice, $contact.firstname",
                }
            ],
        },
    )
    assert core.send(job).event == "message.sent"
    if channel == "mail":
        [mail] = [m for m in smtp_server.messages if recipient in m.rcpt_tos]
        [part] = list(mail.message.iter_attachments())
        assert (part.get_filename(), len(part.get_content())) == (name, 3000)
        assert "Your invoice, Ana" in mail.message.get_body(("plain",)).get_content()
    else:
        [body] = [
            b
            for b in sandbox_requests(sandbox, "sendgrid")
            if b["personalizations"][0]["to"][0]["email"] == recipient
        ]
        [attachment] = body["attachments"]
        assert attachment["filename"] == name
        assert len(base64.b64decode(attachment["content"])) == 3000


def test_media_parts_go_in_order_and_a_retry_never_resends_an_accepted_part(
    core: Core, sandbox: Sandbox
) -> None:
    chat_id = chat()
    urls = [f"https://cdn.example/{n}.png" for n in range(3)]
    job = make_job(
        [{"channel_id": "tg", "identifier": chat_id}],
        message={
            "type": "media",
            "attachments": [
                {"url": url, "kind": "image", "caption": f"part {n} for $contact.firstname"}
                for n, url in enumerate(urls)
            ],
        },
    )
    # The first part is accepted; the second answers 502 once, then goes through.
    original = sandbox.answer
    calls: list[str] = []

    def flaky_second_part(method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
        payload = json.loads(body) if body else {}
        if payload.get("chat_id") == chat_id:
            calls.append(payload["photo"])
            if payload["photo"] == urls[1] and calls.count(urls[1]) == 1:
                sandbox.fail_next(
                    "telegram", 502, {"ok": False, "error_code": 502, "description": "Bad Gateway"}
                )
        return original(method, path, headers, body)

    sandbox.answer = flaky_second_part  # type: ignore[method-assign]
    try:
        event = core.send(job)
    finally:
        sandbox.answer = original  # type: ignore[method-assign]
    assert event.event == "message.sent"
    assert calls == [urls[0], urls[1], urls[1], urls[2]]  # part 0 never resent
    accepted = sandbox_requests(sandbox, "telegram", chat_id=chat_id)
    assert [b["caption"] for b in accepted][-1] == "part 2 for Ana"
    assert event.data.provider_message_ids == [f"{chat_id}:1", f"{chat_id}:2", f"{chat_id}:3"]
    assert event.data.attempts == 2  # two tries at the whole message


# -- rendering -----------------------------------------------------------------------


def test_variables_of_every_namespace_render_as_data(
    core: Core, settings: Settings, sandbox: Sandbox
) -> None:
    chat_id = chat()
    text = (
        "Hi $contact.name, I'm $assignee.firstname. Order $trigger.order.id: "
        "${http.body.status|pending}, $http.body.items.0.sku, total $trigger.order.total. "
        "Today is $system.current_date. Costs $10 or US$5. Raw: $trigger.trap, $unknown.thing."
    )
    job = make_job(
        [{"channel_id": "tg", "identifier": chat_id}],
        message={"type": "text", "text": text},
        assignee={"firstname": "Joe"},
        variables={
            "trigger": {"order": {"id": "A-17", "total": 2.5}, "trap": "$contact.firstname /hours"},
            "http": {"body": {"status": "", "items": [{"sku": "SKU-1"}]}},
        },
    )
    assert core.send(job).event == "message.sent"
    [body] = sandbox_requests(sandbox, "telegram", chat_id=chat_id)
    today = datetime.now(ZoneInfo(settings.timezone)).strftime("%Y-%m-%d")
    assert body["text"] == (
        "Hi Ana Silva, I'm Joe. Order A-17: pending, SKU-1, total 2.5. "
        f"Today is {today}. Costs $10 or US$5. Raw: $contact.firstname /hours, $unknown.thing."
    )


def test_snippets_from_the_snippets_file_expand_with_their_variables(
    core: Core, sandbox: Sandbox
) -> None:
    chat_id = chat()
    job = make_job(
        [{"channel_id": "tg", "identifier": chat_id}],
        message={"type": "text", "text": "/hours Reply /nosuch for more."},
    )
    assert core.send(job).event == "message.sent"
    [body] = sandbox_requests(sandbox, "telegram", chat_id=chat_id)
    assert body["text"] == "We are open 9-5, Ana. Reply /nosuch for more."


def test_rendered_text_over_the_channel_limit_is_invalid_content_and_not_sent(
    core: Core, sandbox: Sandbox
) -> None:
    chat_id = chat()
    job = make_job(
        [{"channel_id": "tg", "identifier": chat_id}],
        message={"type": "text", "text": "Note: $trigger.note"},
        variables={"trigger": {"note": "x" * 5000}},
        failure_branch=True,
    )
    event = core.send(job)
    assert event.data.error is not None
    assert event.data.error.code == "invalid_content"
    assert "4096" in event.data.error.message
    assert (event.data.next, event.data.attempts) == ("failure", 0)
    assert sandbox_requests(sandbox, "telegram", chat_id=chat_id) == []


# -- content per channel -------------------------------------------------------------


def test_custom_payload_is_sent_with_variables_rendered(core: Core, sandbox: Sandbox) -> None:
    chat_id = chat()
    job = make_job(
        [{"channel_id": "tg", "identifier": chat_id}],
        channel_responses={
            "tg": {
                "type": "custom_payload",
                "payload": {"text": "<b>$contact.firstname</b>", "parse_mode": "HTML"},
            }
        },
    )
    assert core.send(job).event == "message.sent"
    [body] = sandbox_requests(sandbox, "telegram", chat_id=chat_id)
    assert body == {"chat_id": chat_id, "text": "<b>Ana</b>", "parse_mode": "HTML"}


def test_telegram_quick_replies_become_an_inline_keyboard(core: Core, sandbox: Sandbox) -> None:
    chat_id = chat()
    job = make_job(
        [{"channel_id": "tg", "identifier": chat_id}],
        message={
            "type": "text",
            "text": "Rate us, $contact.firstname",
            "quick_replies": [{"title": "👍", "payload": "good"}, {"title": "👎"}],
        },
    )
    assert core.send(job).event == "message.sent"
    [body] = sandbox_requests(sandbox, "telegram", chat_id=chat_id)
    assert body["text"] == "Rate us, Ana"
    assert body["reply_markup"] == {
        "inline_keyboard": [
            [{"text": "👍", "callback_data": "good"}],
            [{"text": "👎", "callback_data": "👎"}],
        ]
    }


def test_messenger_button_template_is_sent(core: Core, sandbox: Sandbox) -> None:
    psid = str(uuid.uuid4().int % 10**15)
    payload = {
        "template_type": "button",
        "text": "Hi $contact.firstname, track your order?",
        "buttons": [{"type": "web_url", "url": "https://shop.example/t/A-17", "title": "Track"}],
    }
    job = make_job(
        [{"channel_id": "fb", "identifier": psid}],
        channel_responses={"fb": {"type": "messenger_template", "payload": payload}},
    )
    assert core.send(job).event == "message.sent"
    [body] = sandbox_requests(sandbox, "messenger", recipient__id=psid)
    assert body["message"]["attachment"] == {
        "type": "template",
        "payload": {**payload, "text": "Hi Ana, track your order?"},
    }
