"""Provider webhook payloads → normalized records (:mod:`herald.webhooks.model`): one
reader per channel type, each as its provider documents its calls
(docs/webhooks.md#what-to-register-per-provider).

A reader sees only verified calls. A body that is not the provider's shape at all is
:class:`~herald.contract.errors.MalformedWebhook` (400); an event of a kind Herald does not
use (a postback, a follow, Telegram's edited messages) is skipped, as are events missing
what Herald needs. Error codes of undelivered messages go through the adapters' own
tables (:func:`herald.adapters.answers.undelivered`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from herald.adapters import custom as custom_adapter
from herald.adapters import twilio_sms as twilio_adapter
from herald.adapters.answers import ErrorTable, Key, undelivered
from herald.adapters.email import sendgrid as sendgrid_adapter
from herald.adapters.masking import Mask, secret_values
from herald.adapters.meta import whatsapp as whatsapp_adapter
from herald.config import (
    ChannelConfig,
    ChannelType,
    InstagramChannel,
    MessengerChannel,
    WhatsAppChannel,
)
from herald.contract.errors import MalformedWebhook
from herald.core.identities import identity
from herald.webhooks.model import Call, Inbound, Item, Status, StatusName, Watermark
from herald.webhooks.verify import form

Channels = Mapping[str, ChannelConfig]


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str | None:
    """A provider id or text as a string (ids may be numbers, Viber's beyond 2^53)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str | int):
        return str(value) or None
    return None


def _at(value: Any, per_second: int) -> datetime | None:
    """A provider time (Unix seconds or ms, a number or a numeric string) in UTC."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    try:
        return datetime.fromtimestamp(number / per_second, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _iso(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else None


def json_body(call: Call) -> Any:
    """The call's body as JSON, or :class:`MalformedWebhook`."""
    try:
        return json.loads(call.body)
    except (ValueError, UnicodeDecodeError):
        raise MalformedWebhook("the body is not JSON") from None


def _failure(
    channel: ChannelConfig, errors: ErrorTable, what: str, keys: tuple[Key, ...], text: str
) -> dict[str, Any]:
    mask = Mask.of(secret_values(channel))
    return undelivered(keys, errors, what, text, mask=mask).as_error()


def _inbound(channel: ChannelConfig, identifier: str, **fields: Any) -> Inbound:
    return Inbound(
        channel_id=channel.id,
        channel_type=str(channel.type),
        identity=identity(channel.type, identifier),
        identifier=identifier,
        **fields,
    )


def _status(channel: ChannelConfig, message_id: str, status: StatusName, **fields: Any) -> Status:
    return Status(channel.id, str(channel.type), message_id, status, **fields)


# -- Meta: WhatsApp, Messenger, Instagram ------------------------------------------------


def _meta_channel(channel: ChannelConfig, channels: Channels, account: str | None) -> ChannelConfig:
    """The configured channel of ``channel``'s type that ``account`` (a phone number id or
    page id) names: one app's webhook carries every number or page subscribed to it. The
    called channel when none is configured with that id."""
    for other in channels.values():
        if other.type != channel.type:
            continue
        own = other.phone_number_id if isinstance(other, WhatsAppChannel) else None
        if isinstance(other, MessengerChannel | InstagramChannel):
            own = other.page_id
        if account is not None and own == account:
            return other
    return channel


def _entries(call: Call, expected: str) -> list[dict[str, Any]]:
    doc = _obj(json_body(call))
    if doc.get("object") != expected or not isinstance(doc.get("entry"), list):
        raise MalformedWebhook(f"not a Meta webhook of object {expected!r}")
    return [_obj(entry) for entry in doc["entry"]]


def whatsapp(channel: ChannelConfig, call: Call, channels: Channels) -> Iterator[Item]:
    """``{"object":"whatsapp_business_account","entry":[{"changes":[{"value":{...}}]}]}``."""
    for entry in _entries(call, "whatsapp_business_account"):
        for change in map(_obj, _list(entry.get("changes"))):
            value = _obj(change.get("value"))
            number = _text(_obj(value.get("metadata")).get("phone_number_id"))
            own = _meta_channel(channel, channels, number)
            yield from _whatsapp_messages(own, value)
            yield from _whatsapp_statuses(own, value)


def _whatsapp_messages(channel: ChannelConfig, value: dict[str, Any]) -> Iterator[Item]:
    for message in map(_obj, _list(value.get("messages"))):
        sender, wamid = _text(message.get("from")), _text(message.get("id"))
        if sender is None or wamid is None:
            continue
        kind = _text(message.get("type")) or "unknown"
        text = _obj(message.get("text")).get("body") if kind == "text" else None
        caption = _obj(message.get(kind)).get("caption")
        yield _inbound(
            channel,
            sender,
            provider_message_id=wamid,
            text=_text(text) or _text(caption),
            at=_at(message.get("timestamp"), 1),
            raw_type=kind,
            event_id=wamid,
        )


_WHATSAPP_STATUSES: Mapping[str, StatusName] = {
    "delivered": "delivered",
    "read": "read",
    "failed": "undelivered",
}


def _whatsapp_statuses(channel: ChannelConfig, value: dict[str, Any]) -> Iterator[Item]:
    for status in map(_obj, _list(value.get("statuses"))):
        wamid, name = _text(status.get("id")), _WHATSAPP_STATUSES.get(str(status.get("status")))
        if wamid is None or name is None:
            continue  # "sent" is what message.sent said already
        error = None
        if name == "undelivered":
            first = _obj(next(iter(_list(status.get("errors"))), None))
            code = first.get("code")
            keys: tuple[Key, ...] = (code,) if isinstance(code, int) else ()
            said = str(first.get("title") or first.get("message") or "")
            error = _failure(channel, whatsapp_adapter.ERRORS, "whatsapp", keys, said)
        yield _status(channel, wamid, name, at=_at(status.get("timestamp"), 1), error=error)


def messenger(channel: ChannelConfig, call: Call, channels: Channels) -> Iterator[Item]:
    """``{"object":"page","entry":[{"id": page, "messaging":[...]}]}``."""
    yield from _messaging(channel, channels, _entries(call, "page"))


def instagram(channel: ChannelConfig, call: Call, channels: Channels) -> Iterator[Item]:
    """``{"object":"instagram","entry":[{"id": account, "messaging":[...]}]}``."""
    yield from _messaging(channel, channels, _entries(call, "instagram"))


#: Messenger's receipt events: the status each reports, and its key in a messaging item.
_RECEIPTS: tuple[tuple[StatusName, str], ...] = (("delivered", "delivery"), ("read", "read"))


def _messaging(
    channel: ChannelConfig, channels: Channels, entries: list[dict[str, Any]]
) -> Iterator[Item]:
    for entry in entries:
        own = _meta_channel(channel, channels, _text(entry.get("id")))
        for item in map(_obj, _list(entry.get("messaging"))):
            sender = _text(_obj(item.get("sender")).get("id"))
            if sender is None:
                continue
            at = _at(item.get("timestamp"), 1000)
            if isinstance(item.get("message"), dict):
                yield from _messaging_message(own, sender, item["message"], at)
            for name, key in _RECEIPTS:
                if isinstance(item.get(key), dict):
                    yield from _receipt(own, sender, name, item[key], at)


def _messaging_message(
    channel: ChannelConfig, sender: str, message: dict[str, Any], at: datetime | None
) -> Iterator[Item]:
    mid = _text(message.get("mid"))
    if mid is None or message.get("is_echo"):
        return  # an echo of a message the page sent
    text = _text(message.get("text"))
    attachment = _obj(next(iter(_list(message.get("attachments"))), None))
    kind = "text" if text is not None else _text(attachment.get("type")) or "unknown"
    yield _inbound(
        channel, sender, provider_message_id=mid, text=text, at=at, raw_type=kind, event_id=mid
    )


def _receipt(
    channel: ChannelConfig,
    sender: str,
    name: StatusName,
    receipt: dict[str, Any],
    at: datetime | None,
) -> Iterator[Item]:
    """A delivery or read receipt: listed mids, a mid (Instagram's read), a watermark."""
    mids = [_text(mid) for mid in _list(receipt.get("mids"))] + [_text(receipt.get("mid"))]
    for mid in mids:
        if mid is not None:
            yield _status(channel, mid, name, at=at)
    watermark = receipt.get("watermark")
    if isinstance(watermark, int) and not isinstance(watermark, bool):
        who = identity(channel.type, sender)
        yield Watermark(channel.id, str(channel.type), who, name, watermark, at)


# -- Telegram, Twilio, LINE, Viber ---------------------------------------------------------

_TELEGRAM_KINDS = ("text", "photo", "document", "video", "audio", "voice", "sticker", "location")


def telegram(channel: ChannelConfig, call: Call, channels: Channels) -> Iterator[Item]:
    """An Update: ``{"update_id", "message": {"message_id", "chat": {"id"}, "date", "text"}}``."""
    update = _obj(json_body(call))
    update_id = _text(update.get("update_id"))
    message = _obj(update.get("message"))
    chat = _text(_obj(message.get("chat")).get("id"))
    number = _text(message.get("message_id"))
    if update_id is None:
        raise MalformedWebhook("not a Telegram Update (no update_id)")
    if chat is None or number is None:
        return  # an edited message, a callback query, a channel post ...
    kind = next((k for k in _TELEGRAM_KINDS if k in message), "unknown")
    yield _inbound(
        channel,
        chat,
        # As the adapter reports sent ids: message ids are unique per chat only.
        provider_message_id=f"{chat}:{number}",
        text=_text(message.get("text")) or _text(message.get("caption")),
        at=_at(message.get("date"), 1),
        raw_type=kind,
        event_id=update_id,
    )


_TWILIO_STATUSES: Mapping[str, StatusName] = {
    "delivered": "delivered",
    "read": "read",
    "undelivered": "undelivered",
    "failed": "undelivered",
}


def twilio(channel: ChannelConfig, call: Call, channels: Channels) -> Iterator[Item]:
    """A form: an inbound message (``From``, ``Body``), or a status callback
    (``MessageStatus``, ``ErrorCode``), both with ``MessageSid``."""
    fields = dict(form(call))
    sid = fields.get("MessageSid") or fields.get("SmsSid")
    if not sid:
        raise MalformedWebhook("not a Twilio message webhook (no MessageSid)")
    status = fields.get("MessageStatus") or fields.get("SmsStatus") or "received"
    if status == "received":
        sender = fields.get("From")
        if not sender:
            raise MalformedWebhook("a Twilio inbound message without From")
        media = fields.get("NumMedia", "0")
        yield _inbound(
            channel,
            sender,
            provider_message_id=sid,
            text=fields.get("Body") or None,
            at=None,  # Twilio sends no time: the receive time is used
            raw_type="media" if media.isdigit() and int(media) > 0 else "text",
            event_id=sid,
        )
        return
    name = _TWILIO_STATUSES.get(status)
    if name is None:
        return  # queued, sending, sent: nothing the outcome event did not say
    error = None
    if name == "undelivered":
        code = fields.get("ErrorCode", "")
        keys: tuple[Key, ...] = (int(code),) if code.isdigit() else ()
        error = _failure(channel, twilio_adapter.ERRORS, "twilio_sms", keys, f"message {status}")
    yield _status(channel, sid, name, at=None, error=error)


def line(channel: ChannelConfig, call: Call, channels: Channels) -> Iterator[Item]:
    """``{"destination", "events": [{"type": "message", "source": {"userId"}, ...}]}``; an
    empty ``events`` is LINE's connectivity check. LINE reports no deliveries or reads."""
    doc = _obj(json_body(call))
    if not isinstance(doc.get("events"), list):
        raise MalformedWebhook("not a LINE webhook (no events)")
    for event in map(_obj, doc["events"]):
        message = _obj(event.get("message"))
        user = _text(_obj(event.get("source")).get("userId"))
        mid = _text(message.get("id"))
        if event.get("type") != "message" or user is None or mid is None:
            continue
        kind = _text(message.get("type")) or "unknown"
        yield _inbound(
            channel,
            user,
            provider_message_id=mid,
            text=_text(message.get("text")) if kind == "text" else None,
            at=_at(event.get("timestamp"), 1000),
            raw_type=kind,
            event_id=_text(event.get("webhookEventId")) or mid,
        )


_VIBER_STATUSES: Mapping[str, StatusName] = {
    "delivered": "delivered",
    "seen": "read",
    "failed": "undelivered",
}


def viber(channel: ChannelConfig, call: Call, channels: Channels) -> Iterator[Item]:
    """``{"event": "message" | "delivered" | "seen" | "failed" | ..., "message_token", ...}``."""
    doc = _obj(json_body(call))
    event, token = doc.get("event"), _text(doc.get("message_token"))
    if not isinstance(event, str):
        raise MalformedWebhook("not a Viber callback (no event)")
    at = _at(doc.get("timestamp"), 1000)
    if event == "message":
        sender = _text(_obj(doc.get("sender")).get("id"))
        message = _obj(doc.get("message"))
        if sender is None or token is None:
            return
        yield _inbound(
            channel,
            sender,
            provider_message_id=token,
            text=_text(message.get("text")),
            at=at,
            raw_type=_text(message.get("type")) or "unknown",
            event_id=token,
        )
        return
    name = _VIBER_STATUSES.get(event)
    if name is None or token is None:
        return  # webhook (the set_webhook check), subscribed, conversation_started ...
    error = None
    if name == "undelivered":  # Viber gives a free text, no code
        error = _failure(channel, {}, "viber", (), str(doc.get("desc") or "failed"))
    yield _status(channel, token, name, at=at, error=error)


# -- SendGrid and the custom channel -----------------------------------------------------

_SENDGRID_STATUSES: Mapping[str, StatusName] = {
    "delivered": "delivered",
    "open": "read",
    "bounce": "undelivered",
    "dropped": "undelivered",
}


def sendgrid(channel: ChannelConfig, call: Call, channels: Channels) -> Iterator[Item]:
    """An array of events: ``event``, ``sg_message_id`` (the send's ``X-Message-Id`` and a
    suffix), ``timestamp`` (s), Herald's ``job_id`` from the send's ``custom_args``."""
    events = json_body(call)
    if not isinstance(events, list):
        raise MalformedWebhook("not a SendGrid event webhook (not an array)")
    for event in map(_obj, events):
        name = _SENDGRID_STATUSES.get(str(event.get("event")))
        full = _text(event.get("sg_message_id"))
        if name is None or full is None:
            continue  # processed, deferred, click, spam reports ...
        error = None
        if name == "undelivered":
            said = str(event.get("reason") or event.get("response") or event.get("event"))
            code = _text(event.get("status"))
            keys: tuple[Key, ...] = (code,) if code else ()
            error = _failure(channel, sendgrid_adapter.ERRORS, "sendgrid", keys, said)
        hint = _text(event.get("job_id")) or _text(_obj(event.get("custom_args")).get("job_id"))
        message_id = full.split(".", 1)[0]
        at = _at(event.get("timestamp"), 1)
        yield _status(channel, message_id, name, at=at, error=error, job_hint=hint)


_CUSTOM_STATUSES: Mapping[str, StatusName] = {
    "delivered": "delivered",
    "read": "read",
    "undelivered": "undelivered",
}


def custom(channel: ChannelConfig, call: Call, channels: Channels) -> Iterator[Item]:
    """Standard Webhooks calls: ``message.received`` and ``message.status``."""
    doc = _obj(json_body(call))
    data = _obj(doc.get("data"))
    at = _iso(doc.get("timestamp")) or _at(call.headers.get("webhook-timestamp"), 1)
    event_id = call.headers.get("webhook-id", "")
    if doc.get("type") == "message.received":
        sender = _text(data.get("identifier"))
        if sender is None:
            raise MalformedWebhook("message.received without data.identifier")
        yield _inbound(
            channel,
            sender,
            provider_message_id=_text(data.get("message_id")),
            text=_text(data.get("text")),
            at=at,
            raw_type=_text(data.get("type")) or "text",
            event_id=event_id,
        )
    elif doc.get("type") == "message.status":
        message_id = _text(data.get("message_id"))
        name = _CUSTOM_STATUSES.get(str(data.get("status")))
        if message_id is None or name is None:
            raise MalformedWebhook("message.status needs data.message_id and a known status")
        error = None
        if name == "undelivered":
            said = _obj(data.get("error"))
            code = _text(said.get("code"))
            keys: tuple[Key, ...] = (code,) if code else ()
            text = str(said.get("message") or "undelivered")
            error = _failure(channel, custom_adapter.ERRORS, "custom", keys, text)
        yield _status(channel, message_id, name, at=at, error=error)
    else:
        raise MalformedWebhook("type must be message.received or message.status")


Reader = Callable[[ChannelConfig, Call, Channels], Iterator[Item]]

#: The reader of each channel type that has webhooks (SMTP has none).
READERS: Mapping[ChannelType, Reader] = {
    ChannelType.WHATSAPP: whatsapp,
    ChannelType.MESSENGER: messenger,
    ChannelType.INSTAGRAM: instagram,
    ChannelType.TELEGRAM: telegram,
    ChannelType.TWILIO_SMS: twilio,
    ChannelType.LINE: line,
    ChannelType.VIBER: viber,
    ChannelType.SENDGRID: sendgrid,
    ChannelType.CUSTOM: custom,
}


def parse(channel: ChannelConfig, call: Call, channels: Channels) -> list[Item]:
    """Every record of a verified call to ``channel``'s webhook."""
    reader = READERS.get(ChannelType(channel.type))
    if reader is None:
        raise MalformedWebhook(f"channel type {channel.type} has no webhooks")
    return list(reader(channel, call, channels))
