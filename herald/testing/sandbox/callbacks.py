"""The sandbox calls back: signed webhooks exactly as each provider sends them.

After a send a provider reports statuses (delivered, read, failed) and contacts reply; the
sandbox does the same when told where Herald's webhook server is (:meth:`Callbacks.on`),
posting from a background thread, in order, each call signed as its provider signs it
(docs/webhooks.md#verification). The builders and signers are public, so tests make the
same calls by hand: :func:`status_call`, :func:`reply_call`, :func:`signed`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from herald.testing.sandbox.credentials import (
    DEFAULT_LINE_TOKEN,
    DEFAULT_TWILIO_AUTH_TOKEN,
    DEFAULT_VIBER_TOKEN,
    DEFAULT_WEBHOOK_SECRET,
)

#: The webhook secrets of the sandbox's channels (a channels file names them: the demo's,
#: the tests'). Twilio and Viber sign with their auth tokens, the custom channel with its
#: Standard Webhooks secret.
META_APP_SECRET = "sandbox-meta-app-secret-0123456789abcdef"
META_VERIFY_TOKEN = "sandbox-meta-verify-token"
TELEGRAM_WEBHOOK_SECRET = "sandbox-telegram-secret_token-0123"
LINE_CHANNEL_SECRET = "sandbox-line-channel-secret-0123456789"
#: SendGrid's Event Webhook key pair (fixed, so a channels file can hold the public key).
SENDGRID_EVENT_KEY = ec.derive_private_key(0x5A4D_B0C5_1234_5678_9ABC_DEF0, ec.SECP256R1())
SENDGRID_EVENT_PUBLIC_KEY = base64.b64encode(
    SENDGRID_EVENT_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()

SIGNING_SECRETS: Mapping[str, str] = {
    "whatsapp": META_APP_SECRET,
    "messenger": META_APP_SECRET,
    "instagram": META_APP_SECRET,
    "telegram": TELEGRAM_WEBHOOK_SECRET,
    "twilio_sms": DEFAULT_TWILIO_AUTH_TOKEN,
    "line": LINE_CHANNEL_SECRET,
    "viber": DEFAULT_VIBER_TOKEN,
    "custom": DEFAULT_WEBHOOK_SECRET,
}
_ = DEFAULT_LINE_TOKEN  # the push token; LINE signs webhooks with the channel secret


@dataclass(frozen=True)
class Webhook:
    """One call a provider makes: its body and its content type (unsigned yet)."""

    provider: str
    body: bytes
    content_type: str = "application/json"
    #: Standard Webhooks' webhook-id (the custom channel's dedupe key).
    event_id: str = ""


def _json(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def signed(
    call: Webhook,
    url: str,
    *,
    secret: str | None = None,
    timestamp: int | None = None,
) -> dict[str, str]:
    """The headers of ``call`` to ``url``, signed as its provider signs (with the sandbox's
    secret unless ``secret`` is given; ``timestamp`` for SendGrid and Standard Webhooks)."""
    key = secret or SIGNING_SECRETS.get(call.provider, "")
    body, stamp = call.body, timestamp if timestamp is not None else int(time.time())
    headers = {"content-type": call.content_type}
    if call.provider in ("whatsapp", "messenger", "instagram"):
        digest = hmac.new(key.encode(), body, hashlib.sha256).hexdigest()
        headers["x-hub-signature-256"] = f"sha256={digest}"
    elif call.provider == "telegram":
        headers["x-telegram-bot-api-secret-token"] = key
    elif call.provider == "twilio_sms":
        fields = parse_qsl(body.decode(), keep_blank_values=True)
        signed_text = url + "".join(name + value for name, value in sorted(fields))
        mac = hmac.new(key.encode(), signed_text.encode(), hashlib.sha1).digest()
        headers["x-twilio-signature"] = base64.b64encode(mac).decode()
    elif call.provider == "line":
        mac = hmac.new(key.encode(), body, hashlib.sha256).digest()
        headers["x-line-signature"] = base64.b64encode(mac).decode()
    elif call.provider == "viber":
        headers["x-viber-content-signature"] = hmac.new(key.encode(), body, "sha256").hexdigest()
    elif call.provider == "sendgrid":
        signature = SENDGRID_EVENT_KEY.sign(str(stamp).encode() + body, ec.ECDSA(hashes.SHA256()))
        headers["x-twilio-email-event-webhook-signature"] = base64.b64encode(signature).decode()
        headers["x-twilio-email-event-webhook-timestamp"] = str(stamp)
    elif call.provider == "custom":
        headers["webhook-id"] = call.event_id
        headers["webhook-timestamp"] = str(stamp)
        raw_key = base64.b64decode(key.removeprefix("whsec_"))
        text = f"{call.event_id}.{stamp}.".encode() + body
        mac = hmac.new(raw_key, text, hashlib.sha256).digest()
        headers["webhook-signature"] = "v1," + base64.b64encode(mac).decode()
    return headers


# -- what each provider posts ------------------------------------------------------------

_META_OBJECTS = {
    "whatsapp": "whatsapp_business_account",
    "messenger": "page",
    "instagram": "instagram",
}
#: Each provider's word for a status: delivered, read, failed.
_WORDS: Mapping[str, Mapping[str, str]] = {
    "messenger": {"delivered": "delivered", "read": "read"},
    "instagram": {"read": "read"},
    "whatsapp": {"delivered": "delivered", "read": "read", "failed": "failed"},
    "twilio_sms": {"delivered": "delivered", "read": "read", "failed": "undelivered"},
    "viber": {"delivered": "delivered", "read": "seen", "failed": "failed"},
    "sendgrid": {"delivered": "delivered", "read": "open", "failed": "bounce"},
    "custom": {"delivered": "delivered", "read": "read", "failed": "undelivered"},
}


def _whatsapp(account: str, value: dict[str, Any]) -> dict[str, Any]:
    metadata = {"display_phone_number": "15550000000", "phone_number_id": account}
    inner = {"messaging_product": "whatsapp", "metadata": metadata, **value}
    change = {"field": "messages", "value": inner}
    return {"object": "whatsapp_business_account", "entry": [{"id": "0", "changes": [change]}]}


def _messaging(provider: str, account: str, item: dict[str, Any]) -> dict[str, Any]:
    entry = {"id": account, "time": int(time.time() * 1000), "messaging": [item]}
    return {"object": _META_OBJECTS[provider], "entry": [entry]}


@dataclass(frozen=True)
class _Report:
    """What a status call says, for the builders below."""

    message_id: str
    recipient: str
    status: str
    #: The provider's word for the status.
    word: str
    account: str
    at: float
    code: int | None
    job_id: str | None


def _whatsapp_status(r: _Report) -> Webhook:
    item: dict[str, Any] = {
        "id": r.message_id,
        "status": r.word,
        "timestamp": str(int(r.at)),
        "recipient_id": r.recipient,
    }
    if r.status == "failed":
        item["errors"] = [{"code": r.code or 131026, "title": "Message undeliverable."}]
    return Webhook("whatsapp", _json(_whatsapp(r.account, {"statuses": [item]})))


def _messaging_status(provider: str, r: _Report) -> Webhook:
    ms = int(r.at * 1000)
    receipt: dict[str, Any] = {"watermark": ms}
    if r.status == "delivered":
        receipt["mids"] = [r.message_id]
    if provider == "instagram":
        receipt = {"mid": r.message_id}
    event = {
        "sender": {"id": r.recipient},
        "recipient": {"id": r.account},
        "timestamp": ms,
        "delivery" if r.status == "delivered" else "read": receipt,
    }
    return Webhook(provider, _json(_messaging(provider, r.account, event)))


def _twilio_status(r: _Report) -> Webhook:
    fields = {"MessageSid": r.message_id, "MessageStatus": r.word, "To": r.recipient}
    fields.update({"AccountSid": r.account, "ApiVersion": "2010-04-01"})
    if r.status == "failed":
        fields["ErrorCode"] = str(r.code or 30003)
    return Webhook("twilio_sms", urlencode(fields).encode(), "application/x-www-form-urlencoded")


def _viber_status(r: _Report) -> Webhook:
    doc: dict[str, Any] = {
        "event": r.word,
        "timestamp": int(r.at * 1000),
        "chat_hostname": "SN-sandbox",
        "message_token": int(r.message_id),
        "user_id": r.recipient,
    }
    if r.status == "failed":
        doc["desc"] = "failure description"
    return Webhook("viber", _json(doc))


def _sendgrid_status(r: _Report) -> Webhook:
    event: dict[str, Any] = {
        "email": r.recipient,
        "timestamp": int(r.at),
        "event": r.word,
        "sg_event_id": f"sg-{r.message_id}-{r.word}",
        "sg_message_id": f"{r.message_id}.filter0001.16648.5515E0B88.0",
    }
    if r.job_id:
        event["job_id"] = r.job_id  # custom_args come back as fields of the event
    if r.status == "failed":
        event.update({"reason": "550 5.1.1 unknown user", "status": "5.1.1"})
    return Webhook("sendgrid", _json([event]))


def _custom_status(r: _Report) -> Webhook:
    data: dict[str, Any] = {"message_id": r.message_id, "status": r.word, "error": None}
    if r.status == "failed":
        data["error"] = {"code": "unreachable", "message": "the contact's device is off"}
    doc = {"type": "message.status", "timestamp": _stamp(r.at), "data": data}
    return Webhook("custom", _json(doc), event_id=f"status-{r.message_id}-{r.word}")


_STATUS_CALLS: Mapping[str, Callable[[_Report], Webhook]] = {
    "whatsapp": _whatsapp_status,
    "twilio_sms": _twilio_status,
    "viber": _viber_status,
    "sendgrid": _sendgrid_status,
    "custom": _custom_status,
    "messenger": lambda r: _messaging_status("messenger", r),
    "instagram": lambda r: _messaging_status("instagram", r),
}


def status_call(
    provider: str,
    message_id: str,
    recipient: str,
    status: str,
    *,
    account: str = "0",
    at: float | None = None,
    code: int | None = None,
    job_id: str | None = None,
) -> Webhook | None:
    """The call reporting ``status`` (delivered, read or failed) of ``message_id`` sent to
    ``recipient``; None when the provider reports no such status (Telegram, LINE, SMTP,
    Instagram's deliveries, Messenger's failures). ``account`` is our side's id (phone
    number id, page id); ``code`` a failure's code; ``job_id`` SendGrid's custom_args."""
    word = _WORDS.get(provider, {}).get(status)
    build = _STATUS_CALLS.get(provider)
    if build is None or word is None:
        return None
    at = time.time() if at is None else at
    return build(_Report(message_id, recipient, status, word, account, at, code, job_id))


def _stamp(at: float) -> str:
    moment = time.gmtime(at)
    return time.strftime("%Y-%m-%dT%H:%M:%S", moment) + f".{int(at * 1000) % 1000:03d}Z"


def reply_call(
    provider: str,
    sender: str,
    text: str,
    *,
    account: str = "0",
    at: float | None = None,
    number: int = 1,
) -> Webhook | None:
    """The call of an inbound text ``text`` from ``sender``; None where a provider has no
    inbound webhook Herald reads (SendGrid, SMTP). ``number`` makes the ids unique."""
    at = time.time() if at is None else at
    if provider == "whatsapp":
        message = {
            "from": sender,
            "id": f"wamid.sandbox-in.{number}",
            "timestamp": str(int(at)),
            "type": "text",
            "text": {"body": text},
        }
        value = {"contacts": [{"profile": {"name": "Ana"}, "wa_id": sender}], "messages": [message]}
        return Webhook(provider, _json(_whatsapp(account, value)))
    if provider in ("messenger", "instagram"):
        event = {
            "sender": {"id": sender},
            "recipient": {"id": account},
            "timestamp": int(at * 1000),
            "message": {"mid": f"m_sandbox-in-{number}", "text": text},
        }
        return Webhook(provider, _json(_messaging(provider, account, event)))
    if provider == "telegram":
        chat = int(sender) if sender.lstrip("-").isdigit() else sender
        update: dict[str, Any] = {
            "message_id": number,
            "from": {"id": chat, "is_bot": False, "first_name": "Ana"},
            "chat": {"id": chat, "type": "private"},
            "date": int(at),
            "text": text,
        }
        return Webhook(provider, _json({"update_id": 100000 + number, "message": update}))
    if provider == "twilio_sms":
        fields = {
            "MessageSid": f"SMin{number:030d}",
            "AccountSid": account,
            "From": sender,
            "To": "+15005550006",
            "Body": text,
            "NumMedia": "0",
            "SmsStatus": "received",
        }
        return Webhook(provider, urlencode(fields).encode(), "application/x-www-form-urlencoded")
    if provider == "line":
        event = {
            "type": "message",
            "mode": "active",
            "timestamp": int(at * 1000),
            "webhookEventId": f"01SANDBOX{number:017d}",
            "deliveryContext": {"isRedelivery": False},
            "source": {"type": "user", "userId": sender},
            "replyToken": "sandbox-reply-token",
            "message": {"id": str(500000 + number), "type": "text", "text": text},
        }
        return Webhook(provider, _json({"destination": "Usandbox", "events": [event]}))
    if provider == "viber":
        doc: dict[str, Any] = {
            "event": "message",
            "timestamp": int(at * 1000),
            "message_token": 9_000_000_000_000_000_000 + number,
            "sender": {"id": sender, "name": "Ana"},
            "message": {"type": "text", "text": text},
        }
        return Webhook(provider, _json(doc))
    if provider == "custom":
        data = {"identifier": sender, "text": text, "message_id": f"in-{number}"}
        doc = {"type": "message.received", "timestamp": _stamp(at), "data": data}
        return Webhook(provider, _json(doc), event_id=f"in-{number}")
    return None


# -- calling back after a send -----------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """What a send produced, as the provider saw it: the id it answered, the recipient."""

    provider: str
    message_id: str
    recipient: str
    #: The status callback URL the send asked for (Twilio's StatusCallback), if any.
    callback_url: str | None = None
    #: Herald's job id, where the send carries it (SendGrid's custom_args).
    job_id: str | None = None


def _field(body: bytes, name: str) -> str | None:
    return dict(parse_qsl(body.decode("utf-8", "replace"))).get(name)


def what_was_sent(
    provider: str, request_body: bytes, status: int, headers: Mapping[str, str], answer: bytes
) -> Sent | None:
    """The message a successful send request made, read from the request and answer."""
    try:
        sent: Any = json.loads(request_body) if provider != "twilio_sms" else None
        said: Any = json.loads(answer) if answer else {}
    except ValueError:
        return None
    if provider == "whatsapp":
        return Sent(provider, said["messages"][0]["id"], sent["to"])
    if provider in ("messenger", "instagram"):
        return Sent(provider, said["message_id"], sent["recipient"]["id"])
    if provider == "twilio_sms":
        to = _field(request_body, "To") or ""
        return Sent(provider, said["sid"], to, _field(request_body, "StatusCallback"))
    if provider == "viber":
        return Sent(provider, str(said["message_token"]), sent["receiver"])
    if provider == "sendgrid":
        to = sent["personalizations"][0]["to"][0]["email"]
        job_id = (sent.get("custom_args") or {}).get("job_id")
        return Sent(provider, headers["x-message-id"], to, job_id=job_id)
    if provider == "custom":
        found = said.get("message_id") or said.get("id")
        return Sent(provider, str(found), sent["data"]["recipient"]) if found else None
    if provider == "telegram":
        return Sent(provider, f"{sent['chat_id']}:{said['result']['message_id']}", sent["chat_id"])
    if provider == "line":
        return Sent(provider, said["sentMessages"][0]["id"], sent["to"])
    return None


@dataclass
class Target:
    """Where one provider's calls go, and what it reports after each send."""

    url: str
    statuses: Sequence[str] = ("delivered", "read")
    #: A reply from the recipient after the statuses, if set.
    reply: str | None = None
    #: Seconds before the first call, and between calls.
    delay_s: float = 0.3


@dataclass
class Callbacks:
    """The sandbox's callbacks: targets by provider, and the calls made so far."""

    targets: dict[str, Target] = field(default_factory=dict)
    #: (provider, HTTP status of Herald's answer) of each call made.
    made: list[tuple[str, int]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _numbers: dict[str, int] = field(default_factory=dict)
    #: Where the replies' ids start: a provider never reuses one, so neither do two
    #: sandboxes calling one Redis (a second demo run): they would be taken as repeats.
    _first: int = field(default_factory=lambda: random.randint(1, 10**8) * 1000)

    def on(self, provider: str, target: Target) -> None:
        """After each send through ``provider``, call back ``target``."""
        self.targets[provider] = target

    def off(self) -> None:
        """Stop calling back."""
        self.targets.clear()

    def after_send(self, sent: Sent) -> None:
        """Call back for ``sent`` from a background thread, if its provider has a target."""
        target = self.targets.get(sent.provider)
        if target is None:
            return
        with self._lock:
            number = self._numbers.get(sent.provider, self._first) + 1
            self._numbers[sent.provider] = number
        calls: list[tuple[Webhook, str]] = []
        for status in target.statuses:
            call = status_call(
                sent.provider, sent.message_id, sent.recipient, status, job_id=sent.job_id
            )
            if call is not None:
                calls.append((call, sent.callback_url or target.url))
        if target.reply is not None:
            reply = reply_call(sent.provider, sent.recipient, target.reply, number=number)
            if reply is not None:
                calls.append((reply, target.url))
        thread = threading.Thread(
            target=self._post, args=(calls, target.delay_s), name="sandbox-callback", daemon=True
        )
        thread.start()

    def _post(self, calls: list[tuple[Webhook, str]], delay_s: float) -> None:
        with httpx.Client(timeout=5) as client:
            for call, url in calls:
                time.sleep(delay_s)
                try:
                    answer = client.post(url, content=call.body, headers=signed(call, url))
                    status = answer.status_code
                except httpx.HTTPError:
                    status = 0
                with self._lock:
                    self.made.append((call.provider, status))
