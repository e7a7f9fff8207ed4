"""Whether a webhook call comes from the channel's provider: one check per channel type,
over the raw bytes as received, compared in constant time (docs/webhooks.md#verification).

Each check returns quietly or raises :class:`~herald.contract.errors.Unsigned` (the call
carries no signature or token) or :class:`~herald.contract.errors.Unverified` (it does not
match, or is too old). A channel whose secret is not configured cannot be verified: its
calls are refused. Messages never repeat a secret, a signature or the body.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from urllib.parse import parse_qsl

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import SecretStr

from herald.adapters.custom import sign as sign_standard_webhook
from herald.config import (
    ChannelConfig,
    CustomChannel,
    InstagramChannel,
    LineChannel,
    MessengerChannel,
    SendGridChannel,
    TelegramChannel,
    TwilioSmsChannel,
    ViberChannel,
    WhatsAppChannel,
)
from herald.config.keys import load_ec_public_key
from herald.contract.errors import AuthFailed, Unsigned, Unverified
from herald.webhooks.model import Call

#: How far a signed timestamp may be from now (SendGrid, Standard Webhooks), in seconds.
TOLERANCE_S = 5 * 60

MetaChannel = WhatsAppChannel | MessengerChannel | InstagramChannel


def _secret(channel: ChannelConfig, value: SecretStr | str | None, name: str) -> bytes:
    if value is None:
        raise Unverified(f"channel {channel.id} has no {name}: its webhooks cannot be verified")
    raw = value.get_secret_value() if isinstance(value, SecretStr) else value
    return raw.encode("utf-8")


def _header(call: Call, name: str) -> str:
    value = call.headers.get(name)
    if not value:
        raise Unsigned(f"no {name} header")
    return value


def _same(expected: bytes | str, offered: bytes | str) -> bool:
    left = expected.encode() if isinstance(expected, str) else expected
    right = offered.encode("utf-8", "replace") if isinstance(offered, str) else offered
    return hmac.compare_digest(left, right)


def _hmac(key: bytes, data: bytes, digest: str) -> bytes:
    return hmac.new(key, data, digest).digest()


def meta(channel: MetaChannel, call: Call) -> None:
    """``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, body)>``."""
    offered = _header(call, "x-hub-signature-256")
    key = _secret(channel, channel.app_secret, "app_secret")
    expected = "sha256=" + _hmac(key, call.body, "sha256").hex()
    if not _same(expected, offered.strip().lower()):
        raise Unverified("X-Hub-Signature-256 does not match the body")


def meta_handshake(channel: MetaChannel, query: str) -> str:
    """The challenge to answer Meta's subscription check with, if the token is ours."""
    params = dict(parse_qsl(query, keep_blank_values=True))
    token = _secret(channel, channel.verify_token, "verify_token")
    challenge = params.get("hub.challenge", "")
    if params.get("hub.mode") != "subscribe" or not challenge:
        raise Unsigned("not a subscription check (hub.mode=subscribe, hub.challenge)")
    if not _same(token, params.get("hub.verify_token", "")):
        raise Unverified("hub.verify_token is not this channel's verify_token")
    return challenge


def telegram(channel: TelegramChannel, call: Call) -> None:
    """``X-Telegram-Bot-Api-Secret-Token`` equal to the ``secret_token`` given to setWebhook."""
    offered = _header(call, "x-telegram-bot-api-secret-token")
    if not _same(_secret(channel, channel.webhook_secret, "webhook_secret"), offered):
        raise Unverified("X-Telegram-Bot-Api-Secret-Token is not this channel's webhook_secret")


def twilio_signature(auth_token: str, url: str, params: list[tuple[str, str]]) -> str:
    """Twilio's ``X-Twilio-Signature``: base64 HMAC-SHA1(auth token, the URL it called, then
    every POST parameter sorted by name, name then value)."""
    data = url + "".join(name + value for name, value in sorted(params))
    mac = hmac.new(auth_token.encode(), data.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def twilio_url(call: Call, public_url: str | None) -> str:
    """The URL Twilio signed: the public URL with the call's path and query, else the
    call's own URL as received."""
    if not public_url:
        return call.url
    query = f"?{call.query}" if call.query else ""
    return public_url.rstrip("/") + call.path + query


def form(call: Call) -> list[tuple[str, str]]:
    """The call's form fields, in order (a field may repeat)."""
    try:
        return parse_qsl(call.body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise Unverified("the form is not UTF-8") from None


def twilio(channel: TwilioSmsChannel, call: Call, public_url: str | None) -> None:
    """``X-Twilio-Signature`` over the URL Twilio called and the sorted form fields."""
    offered = _header(call, "x-twilio-signature")
    token = channel.auth_token.get_secret_value()
    expected = twilio_signature(token, twilio_url(call, public_url), form(call))
    if not _same(expected, offered.strip()):
        raise Unverified("X-Twilio-Signature does not match the URL and form")


def line(channel: LineChannel, call: Call) -> None:
    """``x-line-signature: <base64 HMAC-SHA256(channel secret, body)>``."""
    offered = _header(call, "x-line-signature")
    key = _secret(channel, channel.channel_secret, "channel_secret")
    expected = base64.b64encode(_hmac(key, call.body, "sha256")).decode()
    if not _same(expected, offered.strip()):
        raise Unverified("x-line-signature does not match the body")


def viber(channel: ViberChannel, call: Call) -> None:
    """``X-Viber-Content-Signature: <hex HMAC-SHA256(auth token, body)>``."""
    offered = _header(call, "x-viber-content-signature")
    key = channel.auth_token.get_secret_value().encode()
    if not _same(_hmac(key, call.body, "sha256").hex(), offered.strip().lower()):
        raise Unverified("X-Viber-Content-Signature does not match the body")


def _fresh(stamp: str, now: float) -> None:
    try:
        seconds = int(stamp.strip())
    except ValueError:
        raise Unverified("the signed timestamp is not Unix seconds") from None
    if abs(now - seconds) > TOLERANCE_S:
        raise Unverified(f"the signed timestamp is more than {TOLERANCE_S} s from now")


def sendgrid(channel: SendGridChannel, call: Call, now: float) -> None:
    """ECDSA P-256 / SHA-256 over ``<timestamp header><body>`` under the channel's event
    public key; a timestamp more than :data:`TOLERANCE_S` from now is refused."""
    signature = _header(call, "x-twilio-email-event-webhook-signature")
    stamp = _header(call, "x-twilio-email-event-webhook-timestamp")
    if channel.event_public_key is None:
        raise Unverified(f"channel {channel.id} has no event_public_key: cannot verify")
    key = load_ec_public_key(channel.event_public_key)
    try:
        der = base64.b64decode(signature, validate=True)
        key.verify(der, stamp.encode() + call.body, ec.ECDSA(hashes.SHA256()))
    except (binascii.Error, ValueError, InvalidSignature):
        raise Unverified("the event webhook signature does not match") from None
    _fresh(stamp, now)


def custom(channel: CustomChannel, call: Call, now: float) -> None:
    """Standard Webhooks: any ``v1,`` entry of ``webhook-signature`` is the HMAC of
    ``<webhook-id>.<webhook-timestamp>.<body>`` under the channel's secret, and the
    timestamp is within :data:`TOLERANCE_S` of now."""
    msg_id = _header(call, "webhook-id")
    stamp = _header(call, "webhook-timestamp")
    offered = _header(call, "webhook-signature").split()
    _fresh(stamp, now)
    try:
        expected = sign_standard_webhook(
            channel.secret.get_secret_value(), msg_id, int(stamp), call.body
        )
    except AuthFailed:
        raise Unverified(f"channel {channel.id}: the secret is not whsec_<base64 key>") from None
    if not any(_same(expected, entry) for entry in offered):
        raise Unverified("no webhook-signature entry matches")


def missing(channel: ChannelConfig) -> list[str]:
    """The settings ``channel`` lacks for its webhooks to be verified (``herald channels
    check`` names them; the server refuses such a channel's calls)."""
    wanted: dict[str, object]
    match channel:
        case WhatsAppChannel() | MessengerChannel() | InstagramChannel():
            wanted = {"app_secret": channel.app_secret, "verify_token": channel.verify_token}
        case TelegramChannel():
            wanted = {"webhook_secret": channel.webhook_secret}
        case LineChannel():
            wanted = {"channel_secret": channel.channel_secret}
        case SendGridChannel():
            wanted = {"event_public_key": channel.event_public_key}
        case _:  # Twilio, Viber and custom sign with what they have; SMTP has no webhook
            wanted = {}
    return [name for name, value in wanted.items() if value is None]


def verify(channel: ChannelConfig, call: Call, *, public_url: str | None) -> None:
    """Check ``call`` as the provider of ``channel`` signs it (raises when it does not)."""
    now = time.time()
    match channel:
        case WhatsAppChannel() | MessengerChannel() | InstagramChannel():
            meta(channel, call)
        case TelegramChannel():
            telegram(channel, call)
        case TwilioSmsChannel():
            twilio(channel, call, public_url)
        case LineChannel():
            line(channel, call)
        case ViberChannel():
            viber(channel, call)
        case SendGridChannel():
            sendgrid(channel, call, now)
        case CustomChannel():
            custom(channel, call, now)
        case _:
            raise Unverified(f"channel {channel.id} ({channel.type}) has no webhooks")
