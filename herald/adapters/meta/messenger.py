"""Messenger Send API adapter: ``POST {base}/v21.0/me/messages?access_token=<page token>``.

:class:`SendApiAdapter` is the Send API itself, shared with Instagram: a body
``{"recipient": {"id"}, "messaging_type": "RESPONSE" | "MESSAGE_TAG", "tag"?, "message"}``;
a text is one message (quick replies ride along), media is one message per attachment
with its caption as a following text message, a template is one attachment message.
Limits are checked before any request and never truncated. The token is a query
parameter for Messenger: errors are built from Meta's error object, never from the URL
(docs/channels/messenger.md#errors).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar, TypeVar

from httpx import Response
from pydantic import JsonValue, SecretStr

from herald.adapters.answers import classify, json_object, table
from herald.adapters.base import Adapter, JsonBody, Outbound, Part
from herald.adapters.http import json_bytes
from herald.adapters.limits import check_length
from herald.adapters.meta.graph import graph_url, read
from herald.config import ChannelBase, ChannelType, MessengerChannel
from herald.contract.errors import (
    AuthFailed,
    InvalidContent,
    ProviderUnavailable,
    RateLimited,
    RecipientUnavailable,
    WindowClosed,
)
from herald.contract.job import CustomPayload, MediaMessage, MessengerTemplate, TextMessage
from herald.files.store import FileInfo
from herald.files.uploads import Uploaded

#: Graph code, or (code, subcode), -> Herald error (docs/channels/messenger.md#errors);
#: an unknown code follows the status rule of :mod:`herald.adapters.answers`.
ERRORS = table(
    (AuthFailed, [190, 10, 200, (10, 2018065)]),
    (RecipientUnavailable, [551, (10, 2018108), (200, 1545041), (100, 2018001)]),
    (WindowClosed, [(10, 2018278)]),
    (InvalidContent, [100, (100, 2018109)]),
    (RateLimited, [4, 613]),
    (ProviderUnavailable, [1200, 2]),
)


#: How long an attachment_id is reused: Meta expires them after 90 days; a week less.
ATTACHMENT_TTL_S = 83 * 24 * 3600

#: The channel of a Send API adapter: Messenger's or Instagram's.
SendApiChannel = TypeVar("SendApiChannel", bound=ChannelBase)


class SendApiAdapter(Adapter[SendApiChannel, JsonBody]):
    """The Send API shared by Messenger and Instagram; subclasses set the facts and auth."""

    #: The channel's access token and Send API URL, read in ``setup``.
    _token: SecretStr
    _url: str

    #: Names the channel in error messages.
    name: ClassVar[str]
    text_max: ClassVar[int]
    #: Message tags this channel accepts (each sent as messaging_type MESSAGE_TAG).
    tags: ClassVar[frozenset[str]]
    template_types: ClassVar[frozenset[str]]
    takes_files = True
    quick_replies_max: ClassVar[int] = 13
    quick_reply_title_max: ClassVar[int] = 20
    quick_reply_payload_max: ClassVar[int] = 1000
    button_text_max: ClassVar[int] = 640
    buttons_max: ClassVar[int] = 3
    elements_max: ClassVar[int] = 10
    #: Attachment kind -> Send API attachment type.
    media: ClassVar[dict[str, str]] = {
        "image": "image",
        "audio": "audio",
        "video": "video",
        "file": "file",
    }

    def plan(self, out: Outbound) -> list[Part[JsonBody]]:
        msg = out.message
        if isinstance(msg, TextMessage):
            head = self._head(out.recipient, msg.message_tag)
            return [Part(0, JsonBody({**head, "message": self._text(msg)}))]
        if isinstance(msg, MediaMessage):
            head = self._head(out.recipient, msg.message_tag)
            messages: list[tuple[dict[str, Any], str | None]] = []
            for item in msg.attachments:
                # A library file goes by its attachment_id, filled in at send time.
                payload: dict[str, Any] = (
                    {"url": item.url, "is_reusable": True}
                    if item.file_id is None
                    else {"attachment_id": ""}
                )
                attachment = {"type": self.media[item.sort], "payload": payload}
                messages.append(({"attachment": attachment}, item.file_id))
                if item.caption is not None:
                    caption = f"{self.name} caption (sent as a text)"
                    text = check_length(item.caption, self.text_max, caption)
                    messages.append(({"text": text}, None))
            return [
                Part(i, JsonBody({**head, "message": m}, file=file))
                for i, (m, file) in enumerate(messages)
            ]
        if isinstance(msg, MessengerTemplate):
            head = self._head(out.recipient, msg.message_tag)
            attachment = {"type": "template", "payload": self._template(msg.payload)}
            return [Part(0, JsonBody({**head, "message": {"attachment": attachment}}))]
        if isinstance(msg, CustomPayload):
            return [Part(0, JsonBody({**self._head(out.recipient, None), **msg.payload}))]
        raise InvalidContent(f"{self.name} cannot send {msg.type} messages")

    def _head(self, recipient: str, tag: str | None) -> dict[str, Any]:
        if tag is None:
            return {"recipient": {"id": recipient}, "messaging_type": "RESPONSE"}
        if tag not in self.tags:
            allowed = ", ".join(sorted(self.tags))
            raise InvalidContent(f"{self.name} message_tag {tag!r} is not allowed ({allowed})")
        return {"recipient": {"id": recipient}, "messaging_type": "MESSAGE_TAG", "tag": tag}

    def _text(self, msg: TextMessage) -> dict[str, Any]:
        message: dict[str, Any] = {
            "text": check_length(msg.text, self.text_max, f"{self.name} text")
        }
        replies = msg.quick_replies or []
        if len(replies) > self.quick_replies_max:
            raise InvalidContent(
                f"{self.name} quick replies are {len(replies)}; the limit is"
                f" {self.quick_replies_max}"
            )
        if replies:
            title, data = f"{self.name} quick reply title", f"{self.name} quick reply payload"
            message["quick_replies"] = [
                {
                    "content_type": "text",
                    "title": check_length(r.title, self.quick_reply_title_max, title),
                    "payload": check_length(
                        r.payload or r.title, self.quick_reply_payload_max, data
                    ),
                }
                for r in replies
            ]
        return message

    def _template(self, payload: dict[str, JsonValue]) -> dict[str, JsonValue]:
        kind = payload.get("template_type")
        if kind not in self.template_types:
            raise InvalidContent(f"{self.name} cannot send {kind} templates")
        if kind == "button":
            text = payload.get("text")
            if not isinstance(text, str) or not text:
                raise InvalidContent(f"{self.name} button template needs a text")
            check_length(text, self.button_text_max, f"{self.name} button template text")
            self._count(payload.get("buttons"), self.buttons_max, "button template buttons")
        else:
            self._count(payload.get("elements"), self.elements_max, "generic template elements")
        return payload

    def _count(self, items: JsonValue, most: int, what: str) -> None:
        count = len(items) if isinstance(items, list) else 0
        if not 1 <= count <= most:
            raise InvalidContent(f"{self.name} {what} are {count}; allowed 1 to {most}")

    def send_part(self, out: Outbound, part: Part[JsonBody]) -> list[str]:
        doc = part.payload.body
        if part.payload.file is not None:
            doc = self._with_attachment_id(doc, out.files[part.payload.file])
        response = self._post(json_bytes(doc))
        if response.is_success:
            found = json_object(response).get("message_id")
            if found:
                return [str(found)]
        raise classify(read(response), ERRORS, self.name, mask=self.mask)

    def _with_attachment_id(self, doc: dict[str, Any], info: FileInfo) -> dict[str, Any]:
        """``doc`` with the attachment_id of library file ``info``, uploaded once per
        account and attachment type."""
        attachment = doc["message"]["attachment"]
        scope = f"{self.name}:{self.account}:{attachment['type']}"
        found, _ = self.files.uploads.once(
            scope, info.id, lambda: self._upload(info, attachment["type"])
        )
        payload = {"attachment_id": found}
        message = {**doc["message"], "attachment": {**attachment, "payload": payload}}
        return {**doc, "message": message}

    def _upload(self, info: FileInfo, kind: str) -> Uploaded[None]:
        """The Attachment Upload API (``message_attachments``, multipart ``message`` and
        ``filedata``): the file, once, as reusable; its attachment_id."""
        what = f"{self.name} attachment upload"
        message = {"attachment": {"type": kind, "payload": {"is_reusable": True}}}
        response = self._upload_post(
            data={"message": json_bytes(message).decode()},
            files={"filedata": (info.name, self.files.read(info.id), info.content_type)},
        )
        found = json_object(response).get("attachment_id") if response.is_success else None
        if not found:
            raise classify(read(response), ERRORS, what, mask=self.mask)
        return Uploaded(str(found), ATTACHMENT_TTL_S, None)

    @property
    @abstractmethod
    def account(self) -> str:
        """The Page or account the channel sends as (attachment ids are its own)."""

    @abstractmethod
    def _post(self, body: bytes) -> Response:
        """POST one Send API body, authenticated as this channel requires."""

    @abstractmethod
    def _upload_post(self, *, data: dict[str, str], files: dict[str, Any]) -> Response:
        """POST one multipart upload to ``message_attachments``, authenticated."""


class MessengerAdapter(SendApiAdapter[MessengerChannel]):
    """Sends to Messenger users (PSIDs) as one Facebook Page."""

    channel_type = ChannelType.MESSENGER
    config_type = MessengerChannel
    name = "messenger"
    text_max = 2000
    tags = frozenset(
        {"HUMAN_AGENT", "CONFIRMED_EVENT_UPDATE", "POST_PURCHASE_UPDATE", "ACCOUNT_UPDATE"}
    )
    template_types = frozenset({"generic", "button"})

    def setup(self, channel: MessengerChannel) -> None:
        self._url = graph_url(channel.base_url, "me", "messages")
        self._upload_url = graph_url(channel.base_url, "me", "message_attachments")
        self._token = channel.page_access_token

    @property
    def account(self) -> str:
        return self.channel.page_id

    def _upload_post(self, *, data: dict[str, str], files: dict[str, Any]) -> Response:
        return self.http.request(
            "POST",
            self._upload_url,
            what=f"{self.name} attachment upload",
            params={"access_token": self._token.get_secret_value()},
            data=data,
            files=files,
        )

    def _post(self, body: bytes) -> Response:
        return self.http.request(
            "POST",
            self._url,
            what=self.name,
            params={"access_token": self._token.get_secret_value()},
            content=body,
            headers={"content-type": "application/json"},
        )
