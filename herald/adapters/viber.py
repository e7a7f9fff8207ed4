"""Viber REST Bot API adapter: ``POST {base}/pa/send_message`` with one JSON message.

Viber answers HTTP 200 even on errors: the outcome is the body's ``status``. Media is
one message per attachment (a caption follows its picture as a text message, since
PROVIDERS.md gives no picture-caption limit). Each body is encoded once in ``plan``,
checked against Viber's 30 KB limit and sent as those exact bytes.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

from httpx import Response

from herald.adapters.base import Adapter, Outbound, Part
from herald.adapters.http import json_or_none, retry_after
from herald.config import ChannelType, ViberChannel
from herald.contract.errors import (
    AuthFailed,
    InvalidContent,
    PermanentError,
    ProviderUnavailable,
    RateLimited,
    RecipientUnavailable,
    SendError,
)
from herald.contract.job import Attachment, CustomPayload, MediaMessage, QuickReply, TextMessage

API_URL = "https://chatapi.viber.com"
WHAT = "viber send_message"
RATE_STATUS = 12
#: Viber ``status`` -> Herald error (PROVIDERS.md); 12 is rate_limited, unknown is transient.
ERRORS: dict[int, type[PermanentError]] = {
    1: InvalidContent,  # invalidUrl
    2: AuthFailed,  # invalidAuthToken
    3: InvalidContent,  # badData
    4: InvalidContent,  # missingData
    5: RecipientUnavailable,  # receiverNotRegistered
    6: RecipientUnavailable,  # receiverNotSubscribed
    **{status: InvalidContent for status in (*range(7, 12), *range(13, 25))},
}
#: Attachment kind -> Viber message type (Viber has no audio type: audio goes as a file).
MEDIA_TYPES = {"image": "picture", "video": "video", "file": "file", "audio": "file"}


class ViberAdapter(Adapter[ViberChannel]):
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

    def plan(self, out: Outbound) -> list[Part]:
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
        return [Part(n, {"content": self._encode(body)}) for n, body in enumerate(bodies)]

    def _text(self, text: str, what: str = "text") -> dict[str, Any]:
        if len(text) > self.text_max:
            raise InvalidContent(
                f"viber {what} is {len(text)} characters; the limit is {self.text_max}"
            )
        return {"type": "text", "text": text}

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
        kind = MEDIA_TYPES[item.kind]
        media: dict[str, Any] = {"type": kind, "media": item.url}
        if kind == "file":
            name = item.filename or unquote(urlsplit(item.url).path.rsplit("/", 1)[-1]) or "file"
            if len(name) > self.file_name_max:
                raise InvalidContent(f"viber file_name is over {self.file_name_max} characters")
            media["file_name"] = name
        return [media, self._text(item.caption, "caption")] if item.caption else [media]

    def _encode(self, body: dict[str, Any]) -> str:
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        size = len(content.encode())
        if size > self.body_max_bytes:
            raise InvalidContent(
                f"viber request is {size} bytes of JSON; the limit is {self.body_max_bytes}"
            )
        return content

    def send_part(self, out: Outbound, part: Part) -> list[str]:
        token = self._token.get_secret_value()
        headers = {"x-viber-auth-token": token, "content-type": "application/json"}
        content = str(part.payload["content"]).encode()
        response = self.http.request("POST", self._url, what=WHAT, content=content, headers=headers)
        data = json_or_none(response)
        data = data if isinstance(data, dict) else {}
        if response.status_code == 200 and data.get("status") == 0:
            token_id = data.get("message_token")
            return [] if token_id is None else [str(token_id)]
        raise _error(response, data, token)


def _error(response: Response, data: dict[str, Any], token: str) -> SendError:
    """The Herald error for a Viber answer (PROVIDERS.md table)."""
    http_status = response.status_code
    status = data.get("status")
    if http_status != 200 or not isinstance(status, int):
        message = f"{WHAT}: HTTP {http_status} without a status"
        code = str(http_status)
        if http_status == 429:
            return RateLimited(message, provider_code=code, retry_after=retry_after(response))
        # A 5xx or a 200 we cannot read may have been sent; other answers were not.
        in_doubt = http_status >= 500 or http_status == 200
        return ProviderUnavailable(message, provider_code=code, in_doubt=in_doubt)
    said = str(data.get("status_message") or "no status_message")
    message = f"{WHAT}: status {status} {said}".replace(token, "****")
    code = str(status)
    if status in ERRORS:
        return ERRORS[status](message, provider_code=code)
    if status == RATE_STATUS:
        return RateLimited(message, provider_code=code)
    # An unknown status is an answer (the request was not taken): retry it.
    return ProviderUnavailable(message, provider_code=code)
