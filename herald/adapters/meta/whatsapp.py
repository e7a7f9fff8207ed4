"""WhatsApp Cloud API adapter: ``POST {base}/v21.0/{phone_number_id}/messages``.

The token goes in ``Authorization: Bearer``. A text is one message (a quick-reply menu
makes it an interactive message: reply buttons up to 3 choices, a list up to 10); media
is one message per attachment, in order; a template is one message. Limits are checked
before any request and never truncated. The message id is ``messages[0].id``; it proves
acceptance, not delivery (131047, 131026, 131049 often come later by webhook).
Errors: docs/channels/whatsapp.md#errors.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pydantic import JsonValue

from herald.adapters.answers import classify, json_object, table
from herald.adapters.base import Adapter, JsonBody, Outbound, Part
from herald.adapters.http import json_bytes
from herald.adapters.limits import check_length
from herald.adapters.meta.graph import graph_url, read
from herald.config import ChannelType, WhatsAppChannel
from herald.contract.errors import (
    AuthFailed,
    InvalidContent,
    ProviderUnavailable,
    QuotaExceeded,
    RateLimited,
    RecipientUnavailable,
    WindowClosed,
)
from herald.contract.job import (
    Attachment,
    CustomPayload,
    MediaMessage,
    QuickReply,
    TextMessage,
    WhatsAppTemplate,
)
from herald.files.store import FileInfo
from herald.files.uploads import Uploaded

WHAT = "whatsapp"

#: Graph code -> Herald error (docs/channels/whatsapp.md#errors); an unknown code follows
#: the status rule of :mod:`herald.adapters.answers`.
ERRORS = table(
    (AuthFailed, [0, 190, 3, 10, *range(200, 300), 131031, 131042, 368]),
    (RecipientUnavailable, [131021, 131026, 131049, 133010]),
    (WindowClosed, [131047]),
    (
        InvalidContent,
        [100, 131008, 131009, 131051, 131052, 131053, *range(132000, 132017), 135000],
    ),
    (RateLimited, [4, 80007, 130429, 131056]),
    (QuotaExceeded, [131048]),
    (ProviderUnavailable, [1, 2, 131000, 131016, 131057, 133004]),
)

#: How long an uploaded media id is reused: WhatsApp keeps media 30 days; a day less.
MEDIA_TTL_S = 29 * 24 * 3600

_PHONE = re.compile(r"^\+?[\d\s().-]+$")


def phone_digits(identifier: str) -> str:
    """The digits WhatsApp wants in ``to`` (``+351 911-111-111`` -> ``351911111111``)."""
    digits = re.sub(r"\D", "", identifier)
    if not _PHONE.match(identifier) or not digits:
        raise RecipientUnavailable("whatsapp recipient is not a phone number")
    return digits


class WhatsAppAdapter(Adapter[WhatsAppChannel, JsonBody]):
    """Sends texts, reply menus, media, templates and raw payloads from one business number."""

    channel_type = ChannelType.WHATSAPP
    config_type = WhatsAppChannel
    takes_files = True
    text_max: ClassVar[int] = 4096
    caption_max: ClassVar[int] = 1024
    interactive_body_max: ClassVar[int] = 1024
    buttons_max: ClassVar[int] = 3
    button_title_max: ClassVar[int] = 20
    button_id_max: ClassVar[int] = 256
    rows_max: ClassVar[int] = 10
    row_title_max: ClassVar[int] = 24
    row_id_max: ClassVar[int] = 200
    list_button: ClassVar[str] = "Choose"
    template_text_max: ClassVar[int] = 1024
    #: Attachment kind -> WhatsApp message type.
    media: ClassVar[dict[str, str]] = {
        "image": "image",
        "video": "video",
        "audio": "audio",
        "file": "document",
    }

    def setup(self, channel: WhatsAppChannel) -> None:
        self._url = graph_url(channel.base_url, channel.phone_number_id, "messages")
        self._media_url = graph_url(channel.base_url, channel.phone_number_id, "media")
        self._token = channel.access_token
        #: Media ids are per business number: uploads are shared by its channels.
        self._scope = f"whatsapp:{channel.phone_number_id}"

    def _with_media_id(self, doc: dict[str, Any], info: FileInfo) -> dict[str, Any]:
        """``doc`` with the media id of library file ``info``, uploaded once per number."""
        media_id, _ = self.files.uploads.once(self._scope, info.id, lambda: self._upload(info))
        kind = doc["type"]
        return {**doc, kind: {**doc[kind], "id": media_id}}

    def _upload(self, info: FileInfo) -> Uploaded[None]:
        """``POST /{phone_number_id}/media`` (multipart): the file, once; its media id."""
        what = f"{WHAT} media upload"
        response = self.http.request(
            "POST",
            self._media_url,
            what=what,
            headers={"authorization": f"Bearer {self._token.get_secret_value()}"},
            data={"messaging_product": "whatsapp", "type": info.content_type},
            files={"file": (info.name, self.files.read(info.id), info.content_type)},
        )
        found = json_object(response).get("id") if response.is_success else None
        if not found:
            raise classify(read(response), ERRORS, what, mask=self.mask)
        return Uploaded(str(found), MEDIA_TTL_S, None)

    def plan(self, out: Outbound) -> list[Part[JsonBody]]:
        msg = out.message
        base: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": phone_digits(out.recipient),
        }
        if isinstance(msg, TextMessage):
            return [Part(0, JsonBody({**base, **self._text(msg)}))]
        if isinstance(msg, MediaMessage):
            return [
                Part(index, JsonBody({**base, **self._attachment(item)}, file=item.file_id))
                for index, item in enumerate(msg.attachments)
            ]
        if isinstance(msg, WhatsAppTemplate):
            return [Part(0, JsonBody({**base, **self._template(msg)}))]
        if isinstance(msg, CustomPayload):
            body = {**base, **msg.payload}
            text = body.get("text")
            if body.get("type") == "text" and isinstance(text, dict):
                check_length(str(text.get("body", "")), self.text_max, "whatsapp text")
            return [Part(0, JsonBody(body))]
        raise InvalidContent(f"whatsapp cannot send {msg.type} messages")

    def _text(self, msg: TextMessage) -> dict[str, Any]:
        if not msg.quick_replies:
            text = check_length(msg.text, self.text_max, "whatsapp text")
            return {"type": "text", "text": {"body": text, "preview_url": False}}
        what = "whatsapp text with quick replies (interactive body)"
        body = {"text": check_length(msg.text, self.interactive_body_max, what)}
        replies = msg.quick_replies
        if len(replies) <= self.buttons_max:
            action: dict[str, Any] = {"buttons": [self._button(r) for r in replies]}
            interactive = {"type": "button", "body": body, "action": action}
        elif len(replies) <= self.rows_max:
            action = {"button": self.list_button, "sections": [{"rows": self._rows(replies)}]}
            interactive = {"type": "list", "body": body, "action": action}
        else:
            raise InvalidContent(
                f"whatsapp quick replies are {len(replies)}; the limit is {self.rows_max}"
                " (an interactive list)"
            )
        return {"type": "interactive", "interactive": interactive}

    def _button(self, reply: QuickReply) -> dict[str, Any]:
        title = check_length(reply.title, self.button_title_max, "whatsapp reply button title")
        ident = check_length(reply.payload or reply.title, self.button_id_max, "whatsapp button id")
        return {"type": "reply", "reply": {"id": ident, "title": title}}

    def _rows(self, replies: list[QuickReply]) -> list[dict[str, Any]]:
        return [
            {
                "id": check_length(r.payload or r.title, self.row_id_max, "whatsapp list row id"),
                "title": check_length(r.title, self.row_title_max, "whatsapp list row title"),
            }
            for r in replies
        ]

    def _attachment(self, item: Attachment) -> dict[str, Any]:
        kind = self.media[item.sort]
        # A library file goes by the media id of its upload, filled in at send time.
        media: dict[str, Any] = {"link": item.url} if item.file_id is None else {"id": ""}
        if item.caption is not None:
            if kind == "audio":
                raise InvalidContent("whatsapp audio cannot carry a caption; remove it")
            media["caption"] = check_length(item.caption, self.caption_max, "whatsapp caption")
        if kind == "document" and item.filename:
            media["filename"] = item.filename
        return {"type": kind, kind: media}

    def _template(self, msg: WhatsAppTemplate) -> dict[str, Any]:
        for component in msg.components:
            for param in _parameters(component):
                if param.get("type") == "text" and isinstance(param.get("text"), str):
                    what = "whatsapp template text parameter"
                    check_length(str(param["text"]), self.template_text_max, what)
        template: dict[str, Any] = {"name": msg.name, "language": {"code": msg.language}}
        if msg.components:
            template["components"] = msg.components
        return {"type": "template", "template": template}

    def send_part(self, out: Outbound, part: Part[JsonBody]) -> list[str]:
        headers = {
            "authorization": f"Bearer {self._token.get_secret_value()}",
            "content-type": "application/json",
        }
        doc = part.payload.body
        if part.payload.file is not None:
            doc = self._with_media_id(doc, out.files[part.payload.file])
        body = json_bytes(doc)
        response = self.http.request("POST", self._url, what=WHAT, content=body, headers=headers)
        if response.is_success:
            found = _message_id(json_object(response))
            if found is not None:
                return [found]
        raise classify(read(response), ERRORS, WHAT, mask=self.mask)


def _parameters(component: dict[str, JsonValue]) -> list[dict[str, JsonValue]]:
    params = component.get("parameters")
    return [p for p in params if isinstance(p, dict)] if isinstance(params, list) else []


def _message_id(data: dict[str, Any]) -> str | None:
    messages = data.get("messages")
    first = messages[0] if isinstance(messages, list) and messages else None
    found = first.get("id") if isinstance(first, dict) else None
    return str(found) if found else None
