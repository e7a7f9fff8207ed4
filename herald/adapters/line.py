"""LINE Messaging API adapter: ``POST {base}/v2/bot/message/push`` with up to 5 messages.

Every part carries an ``X-Line-Retry-Key`` derived from the job id and the part's
index, so a retry or a redelivered job reuses the key and LINE sends at most once;
a 409 "The retry key is already accepted" is therefore a success. Limits are checked
before any request and never truncated (docs/channels/line.md#errors).
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from httpx import Response

from herald.adapters.answers import Answer, classify, json_object, retry_after, table
from herald.adapters.base import Adapter, JsonBody, Outbound, Part
from herald.adapters.limits import Units, check_length
from herald.config import ChannelType, LineChannel
from herald.contract.errors import InvalidContent, QuotaExceeded, RecipientUnavailable
from herald.contract.job import Attachment, CustomPayload, MediaMessage, QuickReply, TextMessage

API_URL = "https://api.line.me"
WHAT = "line push"
ALREADY_ACCEPTED = "The retry key is already accepted"
MONTHLY_LIMIT = "You have reached your monthly limit."
#: Keys the answer reader derives from LINE's body (LINE has no codes beyond HTTP).
ABOUT_TO = "recipient is `to`"
MONTHLY = "monthly limit"

#: LINE answer -> Herald error; everything else follows the status rule of
#: :mod:`herald.adapters.answers` (401/403, 429, other 4xx, 5xx).
ERRORS = table(
    (RecipientUnavailable, [ABOUT_TO]),  # a 400 about the recipient, not the messages
    (QuotaExceeded, [MONTHLY]),  # a 429 that is the monthly quota: waiting cannot help
)


def retry_key(job_id: str, index: int) -> str:
    """The ``X-Line-Retry-Key`` of one part of one job: the same on every retry."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{job_id}:{index}"))


class LineAdapter(Adapter[LineChannel, JsonBody]):
    """Pushes texts, quick-reply menus, images and raw payloads to a LINE user."""

    channel_type = ChannelType.LINE
    config_type = LineChannel
    dedupes = True
    messages_max: ClassVar[int] = 5
    text_max: ClassVar[int] = 5000
    quick_replies_max: ClassVar[int] = 13
    label_max: ClassVar[int] = 20
    #: Limit of a message action's ``text`` and a postback's ``data`` / ``displayText``.
    action_text_max: ClassVar[int] = 300
    url_max: ClassVar[int] = 2000

    def setup(self, channel: LineChannel) -> None:
        self._url = self.endpoint(API_URL, "/v2/bot/message/push")
        self._token = channel.channel_access_token

    def plan(self, out: Outbound) -> list[Part[JsonBody]]:
        msg = out.message
        if isinstance(msg, TextMessage):
            text: dict[str, Any] = {"type": "text", "text": self._limit(msg.text, "text")}
            if msg.quick_replies:
                text["quickReply"] = {"items": self._quick_replies(msg.quick_replies)}
            return [Part(0, JsonBody({"to": out.recipient, "messages": [text]}))]
        if isinstance(msg, MediaMessage):
            messages = [m for item in msg.attachments for m in self._media(item)]
            size = self.messages_max
            chunks = [messages[i : i + size] for i in range(0, len(messages), size)]
            return [
                Part(n, JsonBody({"to": out.recipient, "messages": chunk}))
                for n, chunk in enumerate(chunks)
            ]
        if isinstance(msg, CustomPayload):
            return [Part(0, JsonBody(self._custom(out.recipient, msg.payload)))]
        raise InvalidContent(f"line cannot send {msg.type}")

    def _quick_replies(self, replies: list[QuickReply]) -> list[dict[str, Any]]:
        """Message actions, or postbacks (data = payload, the title shown) when a payload is set."""
        if len(replies) > self.quick_replies_max:
            raise InvalidContent(
                f"line has {len(replies)} quick replies; the limit is {self.quick_replies_max}"
            )
        items = []
        for reply in replies:
            label = self._limit(reply.title, "quick reply label", self.label_max)
            title = self._limit(reply.title, "quick reply text", self.action_text_max)
            action: dict[str, Any] = {"type": "message", "label": label, "text": title}
            if reply.payload is not None:
                data = self._limit(reply.payload, "quick reply payload", self.action_text_max)
                action = {"type": "postback", "label": label, "data": data, "displayText": title}
            items.append({"type": "action", "action": action})
        return items

    def _media(self, item: Attachment) -> list[dict[str, Any]]:
        """An image message (and its caption as a text message after it)."""
        if item.kind != "image":
            # LINE has no file type; its video needs a preview image and its audio a
            # duration that an attachment does not carry (send those as custom_payload).
            raise InvalidContent(
                f"line cannot send a {item.kind} attachment: only images"
                " (video and audio need previewImageUrl / duration: use custom_payload)"
            )
        url = item.link
        if not url.startswith("https://") or len(url) > self.url_max:
            raise InvalidContent(f"line image URLs must be https and at most {self.url_max} long")
        image = {"type": "image", "originalContentUrl": url, "previewImageUrl": url}
        if not item.caption:
            return [image]
        return [image, {"type": "text", "text": self._limit(item.caption, "caption")}]

    def _custom(self, recipient: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The payload merged into the push body; a lone message object is wrapped."""
        body: dict[str, Any] = {**payload} if "messages" in payload else {"messages": [payload]}
        body["to"] = recipient
        messages = body["messages"]
        if not isinstance(messages, list) or not 1 <= len(messages) <= self.messages_max:
            raise InvalidContent(f"line custom_payload needs 1 to {self.messages_max} messages")
        for message in messages:
            if isinstance(message, dict) and isinstance(message.get("text"), str):
                self._limit(message["text"], "text")
        return body

    def _limit(self, text: str, what: str, limit: int | None = None) -> str:
        """LINE (a Java service) counts characters in UTF-16 code units."""
        return check_length(text, limit or self.text_max, f"line {what}", units=Units.UTF16)

    def send_part(self, out: Outbound, part: Part[JsonBody]) -> list[str]:
        token = self._token.get_secret_value()
        headers = {
            "authorization": f"Bearer {token}",
            "x-line-retry-key": retry_key(out.job_id, part.index),
        }
        response = self.http.request(
            "POST", self._url, what=WHAT, json=part.payload.body, headers=headers
        )
        data = json_object(response)
        if response.is_success and isinstance(data.get("sentMessages"), list):
            return _ids(data)
        if response.status_code == 409 and data.get("message") == ALREADY_ACCEPTED:
            # Sent by an earlier try of this part: its ids when LINE repeats them, else
            # the request id LINE accepted.
            accepted = response.headers.get("x-line-accepted-request-id")
            return _ids(data) or ([accepted] if accepted else [])
        raise classify(read(response, data), ERRORS, WHAT, mask=self.mask)


def _ids(data: dict[str, Any]) -> list[str]:
    sent = data.get("sentMessages")
    sent = sent if isinstance(sent, list) else []
    return [str(m["id"]) for m in sent if isinstance(m, dict) and m.get("id") is not None]


def _about_to(data: dict[str, Any]) -> bool:
    """Whether a 400 concerns the recipient (``to``) rather than the messages."""
    details = data.get("details")
    details = details if isinstance(details, list) else []
    if any(isinstance(d, dict) and d.get("property") == "to" for d in details):
        return True
    # An unknown user id comes back without details.
    return str(data.get("message", "")).startswith("The property, 'to',")


def read(response: Response, data: dict[str, Any]) -> Answer:
    """LINE's ``{"message", "details": [{"message", "property"}]}`` as an :class:`Answer`."""
    status = response.status_code
    text = str(data.get("message") or f"HTTP {status}")
    details = data.get("details")
    if isinstance(details, list) and details and isinstance(details[0], dict):
        text += f" ({details[0].get('property')}: {details[0].get('message')})"
    keys: tuple[str, ...] = ()
    if status == 400 and _about_to(data):
        keys = (ABOUT_TO,)
    elif status == 429 and data.get("message") == MONTHLY_LIMIT:
        keys = (MONTHLY,)
    return Answer(status, keys=keys, text=text, retry_after=retry_after(response))
