"""Twilio Programmable Messaging adapter: ``POST {base}/2010-04-01/Accounts/{sid}/Messages.json``.

Form-encoded, HTTP Basic (account sid : auth token) passed per request. A text is
one SMS (quick replies become a numbered menu appended to the body); a media
message is one MMS carrying every ``MediaUrl`` with the captions joined into
``Body``. Limits are checked before any request and never truncated. Twilio has no
idempotency key: a 5xx or read timeout is in doubt.
"""

from __future__ import annotations

from typing import Any, ClassVar

from httpx import Response

from herald.adapters.base import Adapter, Outbound, Part
from herald.adapters.http import json_or_none, retry_after
from herald.config import ChannelType, TwilioSmsChannel
from herald.contract.errors import (
    AuthFailed,
    ConfigError,
    InvalidContent,
    PermanentError,
    ProviderUnavailable,
    RateLimited,
    RecipientUnavailable,
    SendError,
    WindowClosed,
)
from herald.contract.job import CustomPayload, MediaMessage, QuickReply, TextMessage

API_URL = "https://api.twilio.com"
WHAT = "twilio_sms"

#: Twilio error code -> Herald error (PROVIDERS.md); 20429 and 20500 are handled as transient.
ERRORS: dict[int, type[PermanentError]] = {
    20003: AuthFailed,
    21211: RecipientUnavailable,
    21408: RecipientUnavailable,
    21606: RecipientUnavailable,
    21608: RecipientUnavailable,
    21610: RecipientUnavailable,
    21614: RecipientUnavailable,
    21635: RecipientUnavailable,
    21617: InvalidContent,
    63016: WindowClosed,
}
RATE_CODE = 20429
SERVER_CODE = 20500

Form = list[tuple[str, str]]


def menu(replies: list[QuickReply]) -> str:
    """Quick replies as the numbered text menu SMS can carry: ``1. Yes\\n2. No``."""
    return "\n".join(f"{n}. {reply.title}" for n, reply in enumerate(replies, start=1))


class TwilioSmsAdapter(Adapter[TwilioSmsChannel]):
    """Sends SMS and MMS through a Twilio account (a number or a messaging service)."""

    channel_type = ChannelType.TWILIO_SMS
    config_type = TwilioSmsChannel
    #: Twilio counts ``Body`` in characters (Unicode code points here).
    body_max: ClassVar[int] = 1600
    media_max: ClassVar[int] = 10

    def setup(self, channel: TwilioSmsChannel) -> None:
        if not (channel.from_number or channel.messaging_service_sid):
            raise ConfigError(
                f"channel {channel.id}: twilio_sms needs from_number or messaging_service_sid"
            )
        self._url = self.endpoint(
            API_URL, f"/2010-04-01/Accounts/{channel.account_sid}/Messages.json"
        )
        self._sid = channel.account_sid
        self._token = channel.auth_token
        self._sender: Form = (
            [("MessagingServiceSid", channel.messaging_service_sid)]
            if channel.messaging_service_sid
            else [("From", channel.from_number or "")]
        )

    def plan(self, out: Outbound) -> list[Part]:
        msg = out.message
        form: Form = [("To", out.recipient), *self._sender]
        if isinstance(msg, TextMessage):
            body = msg.text + (f"\n\n{menu(msg.quick_replies)}" if msg.quick_replies else "")
            form.append(("Body", self._limit(body)))
        elif isinstance(msg, MediaMessage):
            if len(msg.attachments) > self.media_max:
                raise InvalidContent(
                    f"twilio_sms MMS has {len(msg.attachments)} attachments;"
                    f" the limit is {self.media_max} MediaUrl"
                )
            captions = "\n".join(a.caption for a in msg.attachments if a.caption)
            if captions:
                form.append(("Body", self._limit(captions)))
            form += [("MediaUrl", a.url) for a in msg.attachments]
        elif isinstance(msg, CustomPayload):
            form = self._merged(form, msg.payload)
        else:
            raise InvalidContent(f"twilio_sms cannot send {msg.type}")
        return [Part(0, {"form": form})]

    def _merged(self, form: Form, payload: dict[str, Any]) -> Form:
        """The payload's fields over ours (lists repeat a field); ``To`` stays the recipient."""
        fields = {name: value for name, value in form}
        fields.update(payload)
        fields["To"] = form[0][1]
        merged: Form = []
        for name, value in fields.items():
            values = value if isinstance(value, list) else [value]
            merged += [(name, _scalar(name, item)) for item in values]
        for name, value in merged:
            if name == "Body":
                self._limit(value)
        if sum(name == "MediaUrl" for name, _ in merged) > self.media_max:
            raise InvalidContent(f"twilio_sms MMS takes at most {self.media_max} MediaUrl")
        return merged

    def _limit(self, body: str) -> str:
        if len(body) > self.body_max:
            raise InvalidContent(
                f"twilio_sms Body is {len(body)} characters; the limit is {self.body_max}"
            )
        return body

    def send_part(self, out: Outbound, part: Part) -> list[str]:
        token = self._token.get_secret_value()
        form = [(str(name), str(value)) for name, value in part.payload["form"]]
        response = self.http.request(
            "POST", self._url, what=WHAT, data=_fields(form), auth=(self._sid, token)
        )
        data = json_or_none(response)
        data = data if isinstance(data, dict) else {}
        if response.is_success and isinstance(data.get("sid"), str):
            return [data["sid"]]
        raise _error(response, data, token)


def _scalar(name: str, value: Any) -> str:
    """A custom_payload value as form text (JSON spelling for numbers and booleans)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise InvalidContent(f"twilio_sms custom_payload field {name} is not a text or number")


def _fields(form: Form) -> dict[str, str | list[str]]:
    """httpx form data: a repeated field becomes a list, order kept."""
    fields: dict[str, str | list[str]] = {}
    for name, value in form:
        seen = fields.get(name)
        if seen is None:
            fields[name] = value
        else:
            fields[name] = [*([seen] if isinstance(seen, str) else seen), value]
    return fields


def _error(response: Response, data: dict[str, Any], token: str) -> SendError:
    """The Herald error for a failed Twilio answer (PROVIDERS.md table)."""
    status = response.status_code
    code = data.get("code")
    code = code if isinstance(code, int) else status
    said = str(data.get("message") or f"HTTP {status}")
    message = f"{WHAT}: {said}".replace(token, "****") if token else f"{WHAT}: {said}"
    provider_code = str(code)
    if code in ERRORS:
        return ERRORS[code](message, provider_code=provider_code)
    if code == RATE_CODE or status == 429:
        return RateLimited(message, provider_code=provider_code, retry_after=retry_after(response))
    if code == SERVER_CODE or status >= 500:
        # SMS is not idempotent: the message may have gone out.
        return ProviderUnavailable(message, provider_code=provider_code, in_doubt=True)
    if status == 401:
        return AuthFailed(message, provider_code=provider_code)
    if 400 <= status < 500:
        return InvalidContent(message, provider_code=provider_code)
    # A 2xx without a sid (may have been sent), or a redirect (not followed, not sent).
    return ProviderUnavailable(message, provider_code=provider_code, in_doubt=status < 300)
