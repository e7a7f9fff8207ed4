"""Content through the real worker on every channel: emoji intact, media parts in order."""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import parse_qs

import pytest

from herald.testing.sandbox import Sandbox
from tests.conftest import Outcomes, make_job, sandbox_requests

pytestmark = pytest.mark.usefixtures("worker")

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


@pytest.mark.parametrize("channel", sorted(CHANNELS))
def test_emoji_reach_every_provider_intact(
    channel: str, celery_app: Any, settings: Any, sandbox: Sandbox, outcomes: Outcomes
) -> None:
    provider, identifier = CHANNELS[channel]
    recipient = identifier()
    job = make_job(
        [{"channel_id": channel, "identifier": recipient}],
        message={"type": "text", "text": f"{EMOJI} Hi $contact.firstname {EMOJI}"},
    )
    celery_app.send_task("herald.send_message", kwargs={"job": job}, queue=settings.queue)
    event = outcomes.wait(job["job_id"])
    assert event.event == "message.sent", event.data.error
    expected = f"{EMOJI} Hi Ana {EMOJI}"
    assert any(expected in text for text in received_texts(sandbox, provider, recipient))


def test_emoji_reach_the_smtp_server_intact(
    celery_app: Any, settings: Any, smtp_server: Any, outcomes: Outcomes
) -> None:
    recipient = f"ana-{uuid.uuid4().hex[:8]}@example.com"
    job = make_job(
        [{"channel_id": "mail", "identifier": recipient}],
        channel_responses={
            "mail": {"type": "email", "subject": f"{EMOJI} order", "html": f"<p>{EMOJI} Hi</p>"}
        },
    )
    celery_app.send_task("herald.send_message", kwargs={"job": job}, queue=settings.queue)
    assert outcomes.wait(job["job_id"]).event == "message.sent"
    [mail] = [m for m in smtp_server.messages if recipient in m.rcpt_tos]
    assert mail.message["Subject"] == f"{EMOJI} order"
    assert EMOJI in mail.message.get_body(("html",)).get_content()
    assert EMOJI in mail.message.get_body(("plain",)).get_content()


def test_media_parts_go_in_order_and_a_retry_never_resends_an_accepted_part(
    celery_app: Any, settings: Any, sandbox: Sandbox, outcomes: Outcomes
) -> None:
    chat = str(uuid.uuid4().int % 10**9)
    urls = [f"https://cdn.example/{n}.png" for n in range(3)]
    job = make_job(
        [{"channel_id": "tg", "identifier": chat}],
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
        if payload.get("chat_id") == chat:
            calls.append(payload["photo"])
            if payload["photo"] == urls[1] and calls.count(urls[1]) == 1:
                sandbox.fail_next(
                    "telegram", 502, {"ok": False, "error_code": 502, "description": "Bad Gateway"}
                )
        return original(method, path, headers, body)

    sandbox.answer = flaky_second_part  # type: ignore[method-assign]
    try:
        celery_app.send_task("herald.send_message", kwargs={"job": job}, queue=settings.queue)
        event = outcomes.wait(job["job_id"])
    finally:
        sandbox.answer = original  # type: ignore[method-assign]
    assert event.event == "message.sent"
    assert calls == [urls[0], urls[1], urls[1], urls[2]]  # part 0 never resent
    accepted = [b for b in sandbox_requests(sandbox, "telegram", chat_id=chat)]
    assert [b["caption"] for b in accepted][-1] == "part 2 for Ana"
    assert event.data.provider_message_ids == [f"{chat}:1", f"{chat}:2", f"{chat}:3"]
    assert event.data.attempts == 2  # two tries at the whole message


def test_transient_failures_that_never_end_exhaust_to_a_retryable_failure(
    celery_app: Any, settings: Any, sandbox: Sandbox, outcomes: Outcomes
) -> None:
    chat = str(uuid.uuid4().int % 10**9)
    body = {"ok": False, "error_code": 500, "description": "Internal Server Error"}
    job = make_job([{"channel_id": "tg", "identifier": chat}], failure_branch=True)
    sandbox.fail_next("telegram", 500, body, times=settings.retry_max_attempts)
    celery_app.send_task("herald.send_message", kwargs={"job": job}, queue=settings.queue)
    event = outcomes.wait(job["job_id"], timeout=60)
    assert event.event == "message.failed"
    assert event.data.attempts == settings.retry_max_attempts
    assert event.data.error is not None
    assert event.data.error.model_dump() == {
        "code": "provider_unavailable",
        "retryable": True,
        "message": "telegram sendMessage: Internal Server Error",
        "provider_code": "500",
    }
    assert event.data.next == "failure"


def test_delivery_record_is_kept_for_the_retention(
    celery_app: Any, settings: Any, outcomes: Outcomes, rclient: Any
) -> None:
    job = make_job()
    celery_app.send_task("herald.send_message", kwargs={"job": job}, queue=settings.queue)
    outcomes.wait(job["job_id"], settle=0)
    record = rclient.hgetall(f"herald:job:{job['job_id']}")
    assert record["state"] == "sent" and record["attempts"] == "1"
    ttl = rclient.ttl(f"herald:job:{job['job_id']}")
    assert settings.state_retention_s - 60 < ttl <= settings.state_retention_s


def send_job(celery_app: Any, settings: Any, job: dict[str, Any]) -> None:
    celery_app.send_task("herald.send_message", kwargs={"job": job}, queue=settings.queue)


def test_custom_payload_is_sent_with_variables_rendered(
    celery_app: Any, settings: Any, sandbox: Sandbox, outcomes: Outcomes
) -> None:
    chat = str(uuid.uuid4().int % 10**9)
    job = make_job(
        [{"channel_id": "tg", "identifier": chat}],
        channel_responses={
            "tg": {
                "type": "custom_payload",
                "payload": {"text": "<b>$contact.firstname</b>", "parse_mode": "HTML"},
            }
        },
    )
    send_job(celery_app, settings, job)
    assert outcomes.wait(job["job_id"]).event == "message.sent"
    [body] = sandbox_requests(sandbox, "telegram", chat_id=chat)
    assert body == {"chat_id": chat, "text": "<b>Ana</b>", "parse_mode": "HTML"}


def test_telegram_quick_replies_become_an_inline_keyboard(
    celery_app: Any, settings: Any, sandbox: Sandbox, outcomes: Outcomes
) -> None:
    chat = str(uuid.uuid4().int % 10**9)
    job = make_job(
        [{"channel_id": "tg", "identifier": chat}],
        message={
            "type": "text",
            "text": "Rate us, $contact.firstname",
            "quick_replies": [{"title": "👍", "payload": "good"}, {"title": "👎"}],
        },
    )
    send_job(celery_app, settings, job)
    assert outcomes.wait(job["job_id"]).event == "message.sent"
    [body] = sandbox_requests(sandbox, "telegram", chat_id=chat)
    assert body["text"] == "Rate us, Ana"
    assert body["reply_markup"] == {
        "inline_keyboard": [
            [{"text": "👍", "callback_data": "good"}],
            [{"text": "👎", "callback_data": "👎"}],
        ]
    }


def test_rendered_text_over_the_channel_limit_is_invalid_content_and_not_sent(
    celery_app: Any, settings: Any, sandbox: Sandbox, outcomes: Outcomes
) -> None:
    chat = str(uuid.uuid4().int % 10**9)
    job = make_job(
        [{"channel_id": "tg", "identifier": chat}],
        message={"type": "text", "text": "Note: $trigger.note"},
        variables={"trigger": {"note": "x" * 5000}},
        failure_branch=True,
    )
    send_job(celery_app, settings, job)
    event = outcomes.wait(job["job_id"])
    assert event.data.error is not None
    assert event.data.error.code == "invalid_content"
    assert "4096" in event.data.error.message
    assert (event.data.next, event.data.attempts) == ("failure", 0)
    assert sandbox_requests(sandbox, "telegram", chat_id=chat) == []


@pytest.mark.parametrize(
    ("tag", "hours_ago", "expected"),
    [
        (None, 2, "message.sent"),
        (None, 48, "message.failed"),
        ("HUMAN_AGENT", 48, "message.sent"),
        ("HUMAN_AGENT", 24 * 8, "message.failed"),
    ],
)
def test_messenger_window_is_enforced_before_the_provider_is_called(
    celery_app: Any,
    settings: Any,
    sandbox: Sandbox,
    outcomes: Outcomes,
    tag: str | None,
    hours_ago: int,
    expected: str,
) -> None:
    from datetime import UTC, datetime, timedelta

    psid = str(uuid.uuid4().int % 10**15)
    last = (datetime.now(UTC) - timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    message: dict[str, Any] = {"type": "text", "text": "Your order shipped"}
    if tag:
        message["message_tag"] = tag
    job = make_job(
        [{"channel_id": "fb", "identifier": psid, "last_interaction_at": last}],
        message=message,
    )
    send_job(celery_app, settings, job)
    event = outcomes.wait(job["job_id"])
    assert event.event == expected
    sent = sandbox_requests(sandbox, "messenger", recipient__id=psid)
    if expected == "message.sent":
        [body] = sent
        assert body["messaging_type"] == ("MESSAGE_TAG" if tag else "RESPONSE")
        assert body.get("tag") == tag
    else:
        assert event.data.error is not None and event.data.error.code == "window_closed"
        assert sent == []


def test_messenger_button_template_is_sent(
    celery_app: Any, settings: Any, sandbox: Sandbox, outcomes: Outcomes
) -> None:
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
    send_job(celery_app, settings, job)
    assert outcomes.wait(job["job_id"]).event == "message.sent"
    [body] = sandbox_requests(sandbox, "messenger", recipient__id=psid)
    assert body["message"]["attachment"] == {
        "type": "template",
        "payload": {**payload, "text": "Hi Ana, track your order?"},
    }


def test_variables_of_every_namespace_render_as_data(
    celery_app: Any, settings: Any, sandbox: Sandbox, outcomes: Outcomes
) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    chat = str(uuid.uuid4().int % 10**9)
    text = (
        "Hi $contact.name, I'm $assignee.firstname. Order $trigger.order.id: "
        "${http.body.status|pending}, $http.body.items.0.sku, total $trigger.order.total. "
        "Today is $system.current_date. Costs $10 or US$5. Raw: $trigger.trap, $unknown.thing."
    )
    job = make_job(
        [{"channel_id": "tg", "identifier": chat}],
        message={"type": "text", "text": text},
        assignee={"firstname": "Joe"},
        variables={
            "trigger": {"order": {"id": "A-17", "total": 2.5}, "trap": "$contact.firstname /hours"},
            "http": {"body": {"status": "", "items": [{"sku": "SKU-1"}]}},
        },
    )
    send_job(celery_app, settings, job)
    assert outcomes.wait(job["job_id"]).event == "message.sent"
    [body] = sandbox_requests(sandbox, "telegram", chat_id=chat)
    today = datetime.now(ZoneInfo(settings.timezone)).strftime("%Y-%m-%d")
    assert body["text"] == (
        "Hi Ana Silva, I'm Joe. Order A-17: pending, SKU-1, total 2.5. "
        f"Today is {today}. Costs $10 or US$5. Raw: $contact.firstname /hours, $unknown.thing."
    )


def test_snippets_from_the_snippets_file_expand_with_their_variables(
    celery_app: Any, settings: Any, sandbox: Sandbox, outcomes: Outcomes
) -> None:
    chat = str(uuid.uuid4().int % 10**9)
    job = make_job(
        [{"channel_id": "tg", "identifier": chat}],
        message={"type": "text", "text": "/hours Reply /nosuch for more."},
    )
    send_job(celery_app, settings, job)
    assert outcomes.wait(job["job_id"]).event == "message.sent"
    [body] = sandbox_requests(sandbox, "telegram", chat_id=chat)
    assert body["text"] == "We are open 9-5, Ana. Reply /nosuch for more."


MEDIA_CHANNELS = sorted(set(CHANNELS) - {"sg"})


@pytest.mark.parametrize("channel", MEDIA_CHANNELS)
def test_media_reaches_every_provider(
    channel: str, celery_app: Any, settings: Any, sandbox: Sandbox, outcomes: Outcomes
) -> None:
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
    send_job(celery_app, settings, job)
    event = outcomes.wait(job["job_id"])
    assert event.event == "message.sent", event.data.error
    assert event.data.provider_message_ids
    texts = received_texts(sandbox, provider, recipient)
    assert url in texts or any(url in t for t in texts)
    assert any("For Ana" in t for t in texts)


@pytest.mark.parametrize("channel", ["sg", "mail"])
def test_media_on_email_channels_arrives_as_an_attachment(
    channel: str,
    celery_app: Any,
    settings: Any,
    sandbox: Sandbox,
    smtp_server: Any,
    outcomes: Outcomes,
) -> None:
    import base64

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
    send_job(celery_app, settings, job)
    assert outcomes.wait(job["job_id"]).event == "message.sent"
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
