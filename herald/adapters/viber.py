"""Viber REST Bot API adapter: ``POST {base}/pa/send_message`` with one JSON message.

Viber answers HTTP 200 even on errors: the outcome is the body's ``status``
(docs/channels/viber.md#errors). Media is one message per attachment (a caption follows
its picture as a text message: Viber documents no limit for a picture's own text). Each
body is encoded once in ``plan``, checked against Viber's 30 KB limit and sent as those
exact bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

from httpx import Response

from herald.adapters.answers import Answer, classify, json_object, retry_after, table
from herald.adapters.base import Adapter, Outbound, Part
from herald.adapters.http import json_bytes
from herald.adapters.limits import check_length
from herald.config import ChannelType, ViberChannel
from herald.contract.errors import AuthFailed, InvalidContent, RateLimited, RecipientUnavailable
from herald.contract.job import Attachment, CustomPayload, MediaMessage, QuickReply, TextMessage

API_URL = "https://chatapi.viber.com"
WHAT = "viber send_message"
#: Viber ``status`` -> Herald error. An unknown status on HTTP 200 is an answer (the
#: request was not taken): provider_unavailable, retried, not in doubt. An answer other
#: than HTTP 200 carries no status and follows the shared status rule of
#: :mod:`herald.adapters.answers`; since the copies were unified its 401/403 is auth_failed
#: and another 4xx invalid_content (both were provider_unavailable, not in doubt).
ERRORS = table(
    (AuthFailed, [2]),  # invalidAuthToken
    (RecipientUnavailable, [5, 6]),  # receiverNotRegistered, receiverNotSubscribed
    (RateLimited, [12]),  # tooManyRequests
    # invalidUrl, badData, missingData, and the rest of Viber's refusals
    (InvalidContent, [1, 3, 4, *range(7, 12), *range(13, 25)]),
)
#: Attachment kind -> Viber message type (Viber has no audio type: audio goes as a file).
MEDIA_TYPES = {"image": "picture", "video": "video", "file": "file", "audio": "file"}


@dataclass(frozen=True)
class ViberMessage:
    """A part: one message's JSON body, encoded (and size-checked) when planned."""

    content: bytes


class ViberAdapter(Adapter[ViberChannel, ViberMessage]):
    """Sends texts, reply keyboards, media and raw payloads through a Viber bot."""

    channel_type = ChannelType.VIBER
    config_type = ViberChannel
    text_max: ClassVar[int] = 7000
    body_max_bytes: ClassVar[int] = 30 * 1024
    buttons_max: ClassVar[int] = 24
    file_name_max: ClassVar[int] = 256
    #: Reply keyboards work from API version 1, so no text needs a higher one.
    min_api_version: ClassVar[int] = 1

    def setup(self, channel: ViberChannel) -> None:
        self._url = self.endpoint(API_URL, "/pa/send_message")
        self._token = channel.auth_token
        self._sender = channel.sender_name

    def plan(self, out: Outbound) -> list[Part[ViberMessage]]:
        msg = out.message
        head = {
            "receiver": out.recipient,
            "min_api_version": self.min_api_version,
            "sender": {"name": self._sender},
        }
        if isinstance(msg, TextMessage):
            bodies = [{**head, **self._text(msg.text)}]
            if msg.quick_replies:
                bodies[0]["keyboard"] = self._keyboard(msg.quick_replies)
        elif isinstance(msg, MediaMessage):
            bodies = [{**head, **m} for item in msg.attachments for m in self._media(item)]
        elif isinstance(msg, CustomPayload):
            bodies = [{**head, **msg.payload, "receiver": out.recipient}]
            if isinstance(bodies[0].get("text"), str):
                self._text(bodies[0]["text"])
        else:
            raise InvalidContent(f"viber cannot send {msg.type}")
        return [Part(n, self._encode(body)) for n, body in enumerate(bodies)]

    def _text(self, text: str, what: str = "text") -> dict[str, Any]:
        return {"type": "text", "text": check_length(text, self.text_max, f"viber {what}")}

    def _keyboard(self, replies: list[QuickReply]) -> dict[str, Any]:
        if len(replies) > self.buttons_max:
            raise InvalidContent(
                f"viber keyboard has {len(replies)} buttons; the limit is {self.buttons_max}"
            )
        buttons = [
            {"ActionType": "reply", "ActionBody": r.payload or r.title, "Text": r.title}
            for r in replies
        ]
        return {"Type": "keyboard", "Buttons": buttons}

    def _media(self, item: Attachment) -> list[dict[str, Any]]:
        """The attachment's message, then its caption as a text message."""
        kind = MEDIA_TYPES[item.sort]
        media: dict[str, Any] = {"type": kind, "media": item.link}
        if kind == "file":
            name = item.filename or unquote(urlsplit(item.link).path.rsplit("/", 1)[-1]) or "file"
            if len(name) > self.file_name_max:
                raise InvalidContent(f"viber file_name is over {self.file_name_max} characters")
            media["file_name"] = name
        return [media, self._text(item.caption, "caption")] if item.caption else [media]

    def _encode(self, body: dict[str, Any]) -> ViberMessage:
        """The request's bytes; a request over 30 KB is refused (a size, not a text length)."""
        content = json_bytes(body)
        if len(content) > self.body_max_bytes:
            raise InvalidContent(
                f"viber request is {len(content)} bytes of JSON; the limit is {self.body_max_bytes}"
            )
        return ViberMessage(content)

    def send_part(self, out: Outbound, part: Part[ViberMessage]) -> list[str]:
        headers = {
            "x-viber-auth-token": self._token.get_secret_value(),
            "content-type": "application/json",
        }
        response = self.http.request(
            "POST", self._url, what=WHAT, content=part.payload.content, headers=headers
        )
        data = json_object(response)
        if response.status_code == 200 and data.get("status") == 0:
            token_id = data.get("message_token")
            return [] if token_id is None else [str(token_id)]
        raise classify(read(response, data), ERRORS, WHAT, mask=self.mask)


def read(response: Response, data: dict[str, Any]) -> Answer:
    """Viber's ``{"status", "status_message"}`` as an :class:`Answer`.

    Only an HTTP 200 carries Viber's status; any other answer came from something in
    front of Viber and is read by its HTTP status.
    """
    http_status = response.status_code
    status = data.get("status") if http_status == 200 else None
    if not isinstance(status, int):
        text = f"HTTP {http_status} without a status"
        return Answer(http_status, text=text, retry_after=retry_after(response))
    said = str(data.get("status_message") or "no status_message")
    return Answer(
        http_status,
        keys=(status,),
        provider_code=str(status),
        text=f"status {status} {said}",
        retry_after=retry_after(response),
    )
