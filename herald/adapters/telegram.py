"""Telegram Bot API adapter: ``POST {base}/bot<TOKEN>/<method>`` with a JSON body.

A text is one ``sendMessage``; media is one send per attachment, in order.
Limits are checked before any request and never truncated. The token sits in
the URL path, so errors are built from the method name and Telegram's own
``description`` only, never from the URL.
"""

from __future__ import annotations

from typing import Any, ClassVar

from httpx import Response

from herald.adapters.base import Adapter, Outbound, Part
from herald.adapters.http import json_or_none, retry_after
from herald.config import ChannelType, TelegramChannel
from herald.contract.errors import (
    AuthFailed,
    InvalidContent,
    ProviderUnavailable,
    RateLimited,
    RecipientUnavailable,
    SendError,
)
from herald.contract.job import CustomPayload, MediaMessage, TextMessage

API_URL = "https://api.telegram.org"


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, as Telegram counts it."""
    return len(text.encode("utf-16-le")) // 2


class TelegramAdapter(Adapter[TelegramChannel]):
    """Sends texts, quick-reply menus, media and raw payloads through a Telegram bot."""

    channel_type = ChannelType.TELEGRAM
    config_type = TelegramChannel
    text_max: ClassVar[int] = 4096
    caption_max: ClassVar[int] = 1024
    callback_data_max: ClassVar[int] = 64
    #: Attachment kind -> (method, field).
    media: ClassVar[dict[str, tuple[str, str]]] = {
        "image": ("sendPhoto", "photo"),
        "file": ("sendDocument", "document"),
        "video": ("sendVideo", "video"),
        "audio": ("sendAudio", "audio"),
    }

    def setup(self, channel: TelegramChannel) -> None:
        self._base = self.endpoint(API_URL, "")
        self._token = channel.bot_token

    def plan(self, out: Outbound) -> list[Part]:
        msg = out.message
        if isinstance(msg, TextMessage):
            return [Part(0, {"method": "sendMessage", "body": self._text(out.recipient, msg)})]
        if isinstance(msg, MediaMessage):
            parts = []
            for index, item in enumerate(msg.attachments):
                method, field = self.media[item.kind]
                body: dict[str, Any] = {"chat_id": out.recipient, field: item.url}
                if item.caption is not None:
                    body["caption"] = self._limit(item.caption, self.caption_max, "caption")
                parts.append(Part(index, {"method": method, "body": body}))
            return parts
        if isinstance(msg, CustomPayload):
            body = {**msg.payload, "chat_id": out.recipient}
            if isinstance(body.get("text"), str):
                self._limit(body["text"], self.text_max, "text")
            return [Part(0, {"method": "sendMessage", "body": body})]
        raise InvalidContent(f"telegram cannot send {msg.type}")

    def _text(self, chat_id: str, msg: TextMessage) -> dict[str, Any]:
        body: dict[str, Any] = {"chat_id": chat_id, "text": self._limit(msg.text, self.text_max)}
        if msg.quick_replies:
            rows = []
            for reply in msg.quick_replies:
                data = reply.payload or reply.title
                size = len(data.encode())
                if size > self.callback_data_max:
                    raise InvalidContent(
                        f"telegram quick reply callback_data is {size} bytes;"
                        f" the limit is {self.callback_data_max}"
                    )
                rows.append([{"text": reply.title, "callback_data": data}])
            body["reply_markup"] = {"inline_keyboard": rows}
        return body

    @staticmethod
    def _limit(text: str, limit: int, what: str = "text") -> str:
        size = utf16_len(text)
        if size > limit:
            raise InvalidContent(
                f"telegram {what} is {size} UTF-16 code units; the limit is {limit}"
            )
        return text

    def send_part(self, out: Outbound, part: Part) -> list[str]:
        return self._send(part.payload["method"], dict(part.payload["body"]), follow=True)

    def _send(self, method: str, body: dict[str, Any], *, follow: bool) -> list[str]:
        token = self._token.get_secret_value()
        what = f"telegram {method}"
        url = f"{self._base}/bot{token}/{method}"
        response = self.http.request("POST", url, what=what, json=body)
        data = json_or_none(response)
        data = data if isinstance(data, dict) else {}
        if response.is_success and data.get("ok") is True and isinstance(data.get("result"), dict):
            result = data["result"]
            chat = result.get("chat")
            chat_id = chat.get("id") if isinstance(chat, dict) else body["chat_id"]
            return [f"{chat_id}:{result.get('message_id')}"]
        params = data.get("parameters")
        params = params if isinstance(params, dict) else {}
        moved = params.get("migrate_to_chat_id")
        if moved is not None and follow:
            # The group became a supergroup: the same send, once, to its new id.
            return self._send(method, {**body, "chat_id": moved}, follow=False)
        description = str(data.get("description") or f"HTTP {response.status_code}")
        raise _error(what, response, data, description.replace(token, "<token>"))


def _error(what: str, response: Response, data: dict[str, Any], description: str) -> SendError:
    """The Herald error for a failed Telegram answer (PROVIDERS.md table)."""
    status = response.status_code
    code = data.get("error_code")
    code = code if isinstance(code, int) else status
    message = f"{what}: {description}"
    provider_code = str(code)
    params = data.get("parameters")
    wait = params.get("retry_after") if isinstance(params, dict) else None
    if code in (401, 404):  # Telegram answers 404 to a token that names no bot
        return AuthFailed(message, provider_code=provider_code)
    if code == 403 or (code == 400 and description.startswith("Bad Request: chat not found")):
        return RecipientUnavailable(message, provider_code=provider_code)
    if code == 400 and isinstance(params, dict) and "migrate_to_chat_id" in params:
        # A second move while following the first: not processed, try again later.
        return ProviderUnavailable(message, provider_code=provider_code)
    if code == 400:
        return InvalidContent(message, provider_code=provider_code)
    if code == 429:
        seconds = float(wait) if isinstance(wait, int | float) else retry_after(response)
        return RateLimited(message, provider_code=provider_code, retry_after=seconds)
    if code >= 500 or status >= 500:
        return ProviderUnavailable(message, provider_code=provider_code, in_doubt=True)
    if 400 <= code < 500:  # a refusal Telegram does not document: retrying cannot help
        return InvalidContent(message, provider_code=provider_code)
    # 2xx without a result, redirects, other 4xx: unexpected; a 2xx may have been sent.
    return ProviderUnavailable(message, provider_code=provider_code, in_doubt=status < 300)
