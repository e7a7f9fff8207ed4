"""Each provider's webhook through the real server: a signed call is recorded, a tampered
or unsigned one is refused with nothing recorded, a replayed one is recorded once."""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import replace
from typing import Any

import pytest

from herald.testing.sandbox.callbacks import (
    META_VERIFY_TOKEN,
    Webhook,
    reply_call,
    signed,
    status_call,
)
from tests.webhook_support import WebhookServer

#: Provider -> the test channel of that type (tests/conftest.py).
CHANNELS = {
    "whatsapp": "wa",
    "messenger": "fb",
    "instagram": "ig",
    "telegram": "tg",
    "twilio_sms": "sms",
    "line": "line",
    "viber": "viber",
    "custom": "hook",
}
#: Providers whose signature covers the body (Telegram's secret token does not).
BODY_SIGNED = [p for p in CHANNELS if p != "telegram"]


def sender_for(provider: str) -> str:
    """A fresh identifier of the kind the provider names contacts by."""
    digits = str(random.randint(10**10, 10**11 - 1))
    return {
        "whatsapp": digits,
        "twilio_sms": f"+{digits}",
        "telegram": digits,
        "line": f"U{uuid.uuid4().hex}",
    }.get(provider, f"user-{uuid.uuid4().hex[:12]}")


def reply(provider: str, text: str = "hello") -> tuple[str, Webhook]:
    sender = sender_for(provider)
    call = reply_call(provider, sender, text, number=random.randint(1, 10**9))
    assert call is not None
    return sender, call


def from_sender(webhooks: WebhookServer, sender: str) -> list[dict[str, Any]]:
    return [e for e in webhooks.inbound() if e["data"]["identifier"] == sender]


@pytest.mark.parametrize("provider", list(CHANNELS))
def test_a_signed_inbound_message_is_recorded_once(webhooks: WebhookServer, provider: str) -> None:
    # Given a contact's message, signed as the provider signs it
    sender, call = reply(provider, "Olá 👋🏽")

    # When the provider delivers it, and delivers it again (its retry)
    first = webhooks.post(CHANNELS[provider], call)
    second = webhooks.post(CHANNELS[provider], call)

    # Then both are answered 2xx, and the inbound stream has it once
    assert (first.status_code, second.status_code) == (200, 200)
    [entry] = from_sender(webhooks, sender)
    assert entry["event"] == "message.received"
    data = entry["data"]
    assert set(data) == {
        "channel_id",
        "channel_type",
        "identifier",
        "contact_id",
        "provider_message_id",
        "text",
        "received_at",
        "raw_type",
    }
    assert (data["channel_id"], data["channel_type"]) == (CHANNELS[provider], provider)
    assert (data["text"], data["raw_type"], data["contact_id"]) == ("Olá 👋🏽", "text", None)
    assert data["received_at"].endswith("Z") and len(data["received_at"]) == 24
    assert data["provider_message_id"]


@pytest.mark.parametrize("provider", BODY_SIGNED)
def test_a_tampered_body_is_refused_and_nothing_is_recorded(
    webhooks: WebhookServer, provider: str
) -> None:
    sender, call = reply(provider, "original")
    url = webhooks.url(CHANNELS[provider])
    headers = signed(call, url)
    forged = call.body.replace(b"original", b"forged!!")

    answer = webhooks.http.post(url, content=forged, headers=headers)

    assert answer.status_code == 403
    assert from_sender(webhooks, sender) == []


@pytest.mark.parametrize("provider", list(CHANNELS))
def test_a_wrong_secret_is_refused(webhooks: WebhookServer, provider: str) -> None:
    sender, call = reply(provider)
    secret = "whsec_" + "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXkh" if provider == "custom" else "x"

    answer = webhooks.post(CHANNELS[provider], call, secret=secret)

    assert answer.status_code == 403
    assert from_sender(webhooks, sender) == []


@pytest.mark.parametrize("provider", list(CHANNELS))
def test_an_unsigned_call_is_refused(webhooks: WebhookServer, provider: str) -> None:
    sender, call = reply(provider)

    answer = webhooks.http.post(
        webhooks.url(CHANNELS[provider]), content=call.body, headers={"content-type": "x"}
    )

    assert answer.status_code == 401
    assert from_sender(webhooks, sender) == []


def test_a_stale_standard_webhook_is_refused(webhooks: WebhookServer) -> None:
    sender, call = reply("custom")

    answer = webhooks.post("hook", call, timestamp=int(time.time()) - 600)

    assert answer.status_code == 403
    assert from_sender(webhooks, sender) == []


def test_a_replayed_standard_webhook_with_a_new_signature_is_deduped(
    webhooks: WebhookServer,
) -> None:
    # The same webhook-id signed anew (a receiver's retry) is the same event
    sender, call = reply("custom")
    assert webhooks.post("hook", call).status_code == 200
    assert webhooks.post("hook", call, timestamp=int(time.time()) - 5).status_code == 200
    assert len(from_sender(webhooks, sender)) == 1


def sendgrid_delivery(message_id: str) -> Webhook:
    call = status_call("sendgrid", message_id, "ana@example.com", "delivered")
    assert call is not None
    return call


@pytest.mark.parametrize(
    "tamper",
    ["body", "signature", "stale", "future"],
)
def test_sendgrid_refuses_a_tampered_or_stale_event_and_records_nothing(
    webhooks: WebhookServer, tamper: str
) -> None:
    message_id = f"sg{uuid.uuid4().hex}"
    call = sendgrid_delivery(message_id)
    url = webhooks.url("sg")
    now = int(time.time())
    stamp = {"stale": now - 600, "future": now + 600}.get(tamper, now)
    headers = signed(call, url, timestamp=stamp)
    body = call.body
    if tamper == "body":
        body = body.replace(b"delivered", b"bounce")
    if tamper == "signature":
        headers["x-twilio-email-event-webhook-timestamp"] = str(now + 1)

    answer = webhooks.http.post(url, content=body, headers=headers)

    assert answer.status_code == 403
    assert not webhooks.redis.exists(f"herald:message:sg:{message_id}")


def test_sendgrid_accepts_a_signed_event(webhooks: WebhookServer) -> None:
    message_id = f"sg{uuid.uuid4().hex}"

    answer = webhooks.post("sg", sendgrid_delivery(message_id))

    # A status of a message Herald has no record of waits for its send (status.lua)
    assert answer.status_code == 200
    assert webhooks.redis.hget(f"herald:message:sg:{message_id}", "rank") == "1"


@pytest.mark.parametrize("channel_id", ["wa", "fb", "ig"])
def test_meta_subscription_check(webhooks: WebhookServer, channel_id: str) -> None:
    url = webhooks.url(channel_id)
    good = {"hub.mode": "subscribe", "hub.verify_token": META_VERIFY_TOKEN, "hub.challenge": "42"}

    answered = webhooks.http.get(url, params=good)
    refused = webhooks.http.get(url, params={**good, "hub.verify_token": "guess"})

    assert (answered.status_code, answered.text) == (200, "42")
    assert refused.status_code == 403


def test_a_body_over_one_mib_is_413(webhooks: WebhookServer) -> None:
    _, call = reply("whatsapp")
    big = replace(call, body=call.body + b" " * (1024 * 1024))

    answer = webhooks.post("wa", big)

    assert answer.status_code == 413


def test_a_verified_body_that_is_not_the_providers_shape_is_400(
    webhooks: WebhookServer,
) -> None:
    call = Webhook("whatsapp", b'{"object": "page", "entry": []}')
    assert webhooks.post("wa", call).status_code == 400
    assert webhooks.post("wa", Webhook("whatsapp", b"not json")).status_code == 400


def test_channels_without_webhooks_or_unknown_are_404(webhooks: WebhookServer) -> None:
    for channel_id in ("mail", "nope"):
        answer = webhooks.http.post(webhooks.url(channel_id), content=b"{}")
        assert answer.status_code == 404


def test_twilio_is_checked_against_the_public_url(webhooks: WebhookServer) -> None:
    # Behind a proxy Twilio signs the public URL, which the server is told, not its own
    settings = webhooks.settings.model_copy(
        update={"webhooks_public_url": "https://hooks.example/herald"}
    )
    with WebhookServer(settings) as proxied:
        sender, call = reply("twilio_sms")
        public = "https://hooks.example/herald/webhooks/sms"
        headers = signed(call, public)
        local = proxied.http.post(proxied.url("sms"), content=call.body, headers=headers)
        own = proxied.http.post(
            proxied.url("sms"), content=call.body, headers=signed(call, proxied.url("sms"))
        )

    assert (local.status_code, own.status_code) == (200, 403)
    assert "<Response>" in local.text
    assert len(from_sender(webhooks, sender)) == 1
