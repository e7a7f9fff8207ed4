"""Telegram Bot API adapter: ``POST {base}/bot<TOKEN>/<method>`` with a JSON body.

A text is one ``sendMessage``; media is one send per attachment, in order.
Limits are checked before any request and never truncated. The token sits in
the URL path, so errors are built from the method name and Telegram's own
``description`` only, never from the URL (docs/channels/telegram.md#errors).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from httpx import Response

from herald.adapters.answers import Answer, classify, json_object, retry_after, table
from herald.adapters.base import Adapter, Outbound, Part
from herald.adapters.limits import Units, check_length
from herald.config import ChannelType, TelegramChannel
from herald.contract.errors import (
    AuthFailed,
    InvalidContent,
    ProviderUnavailable,
    RecipientUnavailable,
)
from herald.contract.job import CustomPayload, MediaMessage, TextMessage
from herald.files.store import FileInfo
from herald.files.uploads import Uploaded

API_URL = "https://api.telegram.org"
#: How long a file_id is reused (Telegram's do not expire; a month bounds a stale one).
FILE_ID_TTL_S = 30 * 24 * 3600
#: Keys the answer reader derives from a 400's body.
CHAT_NOT_FOUND = "chat not found"
MIGRATED = "migrated"

#: Telegram ``error_code`` (the HTTP status when the body has none) -> Herald error; other
#: 400s, 429 and 5xx follow the status rule of :mod:`herald.adapters.answers`.
ERRORS = table(
    (AuthFailed, [401, 404]),  # Telegram answers 404 to a token that names no bot
    (RecipientUnavailable, [403, CHAT_NOT_FOUND]),
    (ProviderUnavailable, [MIGRATED]),  # moved again while following a move: try later
)


@dataclass(frozen=True)
class TelegramCall:
    """A part: one Bot API method and its JSON parameters."""

    method: str
    body: dict[str, Any]
    #: A library file the call sends: uploaded (multipart) by the first send, then sent
    #: by the ``file_id`` Telegram gave it.
    file: str | None = None


class TelegramAdapter(Adapter[TelegramChannel, TelegramCall]):
    """Sends texts, quick-reply menus, media and raw payloads through a Telegram bot."""

    channel_type = ChannelType.TELEGRAM
    config_type = TelegramChannel
    takes_files = True
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
        #: File ids are the bot's own: uploads are shared by the channels of one bot.
        self._bot_id = channel.bot_token.get_secret_value().partition(":")[0]

    def secrets(self) -> list[str]:
        # The token is "<bot id>:<key>", and an answer may quote either half alone. The bot
        # id is no secret by itself, but it names the bot: it is hidden as well.
        bot_id, _, key = self.channel.bot_token.get_secret_value().partition(":")
        return [*super().secrets(), bot_id, key]

    def plan(self, out: Outbound) -> list[Part[TelegramCall]]:
        msg = out.message
        if isinstance(msg, TextMessage):
            return [Part(0, TelegramCall("sendMessage", self._text(out.recipient, msg)))]
        if isinstance(msg, MediaMessage):
            parts = []
            for index, item in enumerate(msg.attachments):
                method, field = self.media[item.sort]
                body: dict[str, Any] = {"chat_id": out.recipient, field: item.url or ""}
                if item.caption is not None:
                    body["caption"] = self._limit(item.caption, self.caption_max, "caption")
                parts.append(Part(index, TelegramCall(method, body, item.file_id)))
            return parts
        if isinstance(msg, CustomPayload):
            body = {**msg.payload, "chat_id": out.recipient}
            if isinstance(body.get("text"), str):
                self._limit(body["text"], self.text_max, "text")
            return [Part(0, TelegramCall("sendMessage", body))]
        raise InvalidContent(f"telegram cannot send {msg.type}")

    def _text(self, chat_id: str, msg: TextMessage) -> dict[str, Any]:
        text = self._limit(msg.text, self.text_max, "text")
        body: dict[str, Any] = {"chat_id": chat_id, "text": text}
        if msg.quick_replies:
            rows = []
            for reply in msg.quick_replies:
                data = check_length(
                    reply.payload or reply.title,
                    self.callback_data_max,
                    "telegram quick reply callback_data",
                    units=Units.BYTES,
                )
                rows.append([{"text": reply.title, "callback_data": data}])
            body["reply_markup"] = {"inline_keyboard": rows}
        return body

    @staticmethod
    def _limit(text: str, limit: int, what: str) -> str:
        """Telegram counts in UTF-16 code units."""
        return check_length(text, limit, f"telegram {what}", units=Units.UTF16)

    def send_part(self, out: Outbound, part: Part[TelegramCall]) -> list[str]:
        call = part.payload
        if call.file is None:
            return self._send(call, follow=True)
        info = out.files[call.file]
        field = self.media_field(call.method)
        scope = f"telegram:{self._bot_id}:{field}"
        file_id, uploaded = self.files.uploads.once(
            scope, info.id, lambda: self._upload(call, field, info)
        )
        if uploaded is not None:
            return uploaded.result  # the upload was this message's send
        return self._send(replace(call, body={**call.body, field: file_id}), follow=True)

    def media_field(self, method: str) -> str:
        """The parameter a media method takes its file in (``sendPhoto`` -> ``photo``)."""
        return next(f for m, f in self.media.values() if m == method)

    def _upload(self, call: TelegramCall, field: str, info: FileInfo) -> Uploaded[list[str]]:
        """The send as multipart, the file's bytes in ``field``: the message goes out, and
        Telegram's ``file_id`` of the file comes back, for every later send."""
        params = {
            k: v if isinstance(v, str) else json.dumps(v)
            for k, v in call.body.items()
            if k != field
        }
        upload = (info.name, self.files.read(info.id), info.content_type)
        ids, result = self._call(call, follow=False, data=params, files={field: upload})
        sent = result.get(field)
        # A photo comes back in several sizes, the largest last: its id sends the original.
        sent = sent[-1] if isinstance(sent, list) and sent else sent
        file_id = sent.get("file_id") if isinstance(sent, dict) else None
        if not isinstance(file_id, str) or not file_id:
            raise ProviderUnavailable(f"telegram {call.method}: the answer holds no file_id")
        return Uploaded(file_id, FILE_ID_TTL_S, ids)

    def _send(self, call: TelegramCall, *, follow: bool) -> list[str]:
        return self._call(call, follow=follow, json=call.body)[0]

    def _call(
        self, call: TelegramCall, *, follow: bool, **request: Any
    ) -> tuple[list[str], dict[str, Any]]:
        """One Bot API call: the message ids it made and its ``result``."""
        what = f"telegram {call.method}"
        url = f"{self._base}/bot{self._token.get_secret_value()}/{call.method}"
        response = self.http.request("POST", url, what=what, **request)
        data = json_object(response)
        result = data.get("result")
        if response.is_success and data.get("ok") is True and isinstance(result, dict):
            chat = result.get("chat")
            chat_id = chat.get("id") if isinstance(chat, dict) else call.body["chat_id"]
            return [f"{chat_id}:{result.get('message_id')}"], result
        moved = _parameters(data).get("migrate_to_chat_id")
        if moved is not None and follow:
            # The group became a supergroup: the same send, once, to its new id.
            moved_call = replace(call, body={**call.body, "chat_id": moved})
            return self._call(moved_call, follow=False, json=moved_call.body)
        raise classify(read(response, data), ERRORS, what, mask=self.mask)


def _parameters(data: dict[str, Any]) -> dict[str, Any]:
    params = data.get("parameters")
    return params if isinstance(params, dict) else {}


def read(response: Response, data: dict[str, Any]) -> Answer:
    """Telegram's ``{"error_code", "description", "parameters"}`` as an :class:`Answer`."""
    error_code = data.get("error_code")
    own = error_code if isinstance(error_code, int) else None
    code = response.status_code if own is None else own
    description = str(data.get("description") or "")
    params = _parameters(data)
    keys: list[int | str] = []
    if code == 400 and description.startswith(f"Bad Request: {CHAT_NOT_FOUND}"):
        keys.append(CHAT_NOT_FOUND)
    if code == 400 and "migrate_to_chat_id" in params:
        keys.append(MIGRATED)
    wait = params.get("retry_after")
    return Answer(
        response.status_code,
        keys=(*keys, code),
        provider_code=None if own is None else str(own),
        text=description,
        retry_after=float(wait) if isinstance(wait, int | float) else retry_after(response),
    )
