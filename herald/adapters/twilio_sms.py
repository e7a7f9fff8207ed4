"""Twilio Programmable Messaging adapter: ``POST {base}/2010-04-01/Accounts/{sid}/Messages.json``.

Form-encoded, HTTP Basic (account sid : auth token) passed per request. A text is
one SMS (quick replies become a numbered menu appended to the body); a media
message is one MMS carrying every ``MediaUrl`` with the captions joined into
``Body``. Limits are checked before any request and never truncated. Twilio has no
idempotency key: a 5xx or read timeout is in doubt (docs/channels/twilio_sms.md#errors).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from httpx import Response

from herald.adapters.answers import Answer, classify, json_object, retry_after, table
from herald.adapters.base import Adapter, Outbound, Part
from herald.adapters.limits import check_length
from herald.adapters.masking import basic_auth
from herald.config import ChannelType, TwilioSmsChannel
from herald.contract.errors import (
    AuthFailed,
    ConfigError,
    InvalidContent,
    ProviderUnavailable,
    RateLimited,
    RecipientUnavailable,
    WindowClosed,
)
from herald.contract.job import CustomPayload, MediaMessage, QuickReply, TextMessage

API_URL = "https://api.twilio.com"
WHAT = "twilio_sms"

#: Twilio error ``code`` -> Herald error; other answers follow the shared status rule of
#: :mod:`herald.adapters.answers`. Since the copies were unified, a 403 without a known
#: code is auth_failed (it was invalid_content), as on every channel.
ERRORS = table(
    (AuthFailed, [20003]),
    (RecipientUnavailable, [21211, 21408, 21606, 21608, 21610, 21614, 21635]),
    (InvalidContent, [21617]),
    (WindowClosed, [63016]),
    (RateLimited, [20429]),
    (ProviderUnavailable, [20500]),  # on a 5xx, in doubt: SMS has no idempotency key
)

Form = list[tuple[str, str]]


@dataclass(frozen=True)
class TwilioForm:
    """A part: the form fields of one Messages request, in order (a field may repeat)."""

    fields: tuple[tuple[str, str], ...]


def menu(replies: list[QuickReply]) -> str:
    """Quick replies as the numbered text menu SMS can carry: ``1. Yes\\n2. No``."""
    return "\n".join(f"{n}. {reply.title}" for n, reply in enumerate(replies, start=1))


class TwilioSmsAdapter(Adapter[TwilioSmsChannel, TwilioForm]):
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

    def secrets(self) -> list[str]:
        # httpx sends "Authorization: Basic base64(sid:token)"; an answer quoting that header
        # shows the token in base64, which the raw token's mask does not match.
        token = self.channel.auth_token.get_secret_value()
        return [*super().secrets(), *basic_auth(self.channel.account_sid, token)]

    def plan(self, out: Outbound) -> list[Part[TwilioForm]]:
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
            form += [("MediaUrl", a.link) for a in msg.attachments]
        elif isinstance(msg, CustomPayload):
            form = self._merged(form, msg.payload)
        else:
            raise InvalidContent(f"twilio_sms cannot send {msg.type}")
        if self.webhook_url and not any(name == "StatusCallback" for name, _ in form):
            # Twilio posts this message's statuses there (docs/webhooks.md#twilio-sms).
            form.append(("StatusCallback", self.webhook_url))
        return [Part(0, TwilioForm(tuple(form)))]

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
        return check_length(body, self.body_max, "twilio_sms Body")

    def send_part(self, out: Outbound, part: Part[TwilioForm]) -> list[str]:
        auth = (self._sid, self._token.get_secret_value())
        data = _fields(part.payload.fields)
        response = self.http.request("POST", self._url, what=WHAT, data=data, auth=auth)
        answer = json_object(response)
        if response.is_success and isinstance(answer.get("sid"), str):
            return [answer["sid"]]
        raise classify(read(response, answer), ERRORS, WHAT, mask=self.mask)


def _scalar(name: str, value: Any) -> str:
    """A custom_payload value as form text (JSON spelling for numbers and booleans)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise InvalidContent(f"twilio_sms custom_payload field {name} is not a text or number")


def _fields(form: tuple[tuple[str, str], ...]) -> dict[str, str | list[str]]:
    """httpx form data: a repeated field becomes a list, order kept."""
    fields: dict[str, str | list[str]] = {}
    for name, value in form:
        seen = fields.get(name)
        if seen is None:
            fields[name] = value
        else:
            fields[name] = [*([seen] if isinstance(seen, str) else seen), value]
    return fields


def read(response: Response, data: dict[str, Any]) -> Answer:
    """Twilio's ``{"code", "message", "more_info", "status"}`` as an :class:`Answer`."""
    code = data.get("code")
    own = code if isinstance(code, int) else None
    return Answer(
        response.status_code,
        keys=() if own is None else (own,),
        provider_code=None if own is None else str(own),
        text=str(data.get("message") or ""),
        retry_after=retry_after(response),
    )
