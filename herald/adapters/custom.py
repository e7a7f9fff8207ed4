"""Custom channel adapter: a Standard Webhooks ``message.send`` POST (docs/channels/custom.md).

The body is serialised once and signed over exactly those bytes; ``webhook-id``
is the job id (percent-encoded where a header cannot carry it: :func:`webhook_id`), so the
receiver can drop a resend. The timestamp is taken when
the request leaves (a retry an hour later must still pass the receiver's
5-minute tolerance), so :meth:`CustomAdapter.plan` prepares only ``data``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from httpx import Response

from herald.adapters.answers import Answer, ErrorTable, classify, json_object, retry_after
from herald.adapters.base import Adapter, Outbound, Part
from herald.adapters.http import json_bytes
from herald.config import ChannelType, CustomChannel
from herald.contract.errors import AuthFailed

WHAT = "custom webhook"
#: The receiver has no codes of its own: the status rule of :mod:`herald.adapters.answers`
#: is the whole table (401/403, 429, other 4xx, 5xx).
ERRORS: ErrorTable = {}


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``.

    Raises :class:`AuthFailed` when ``secret`` is not ``whsec_<base64 key>``.
    """
    key = secret.removeprefix("whsec_")
    try:
        raw_key = base64.b64decode(key + "=" * (-len(key) % 4), validate=True)
    except binascii.Error:
        raise AuthFailed(f"{WHAT}: the channel secret is not whsec_<base64 key>") from None
    mac = hmac.new(raw_key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


#: What ``webhook-id`` carries as it is: printable ASCII and inner spaces, except "%" (the
#: escape itself, encoded so that decoding gives back the exact job id).
_ID_SAFE = "".join(chr(code) for code in range(0x20, 0x7F) if chr(code) != "%")
_OUTER_SPACES = re.compile(r"^ +| +$")


def webhook_id(job_id: str) -> str:
    """The ``webhook-id`` of a job: its id, with every character a header cannot carry as it
    is (non-ASCII, a control, ``%``, a space at either end, which HTTP trims) percent-encoded
    as UTF-8. Injective, so distinct jobs never share an id; ``unquote`` gives the job id."""
    encoded = quote(job_id, safe=_ID_SAFE)
    return _OUTER_SPACES.sub(lambda spaces: "%20" * len(spaces[0]), encoded)


def target_url(url: str, base_url: str | None) -> str:
    """``url`` with its scheme and host (and a path prefix) taken from ``base_url``, if set."""
    if not base_url:
        return url
    base, parts = urlsplit(base_url), urlsplit(url)
    path = base.path.rstrip("/") + parts.path
    return urlunsplit((base.scheme, base.netloc, path, parts.query, parts.fragment))


@dataclass(frozen=True)
class WebhookData:
    """A part: the ``data`` of the ``message.send`` document (the rest is stamped at send)."""

    data: dict[str, Any]


class CustomAdapter(Adapter[CustomChannel, WebhookData]):
    """Posts each message, signed, to the channel's webhook."""

    channel_type = ChannelType.CUSTOM
    config_type = CustomChannel
    dedupes = True

    def setup(self, channel: CustomChannel) -> None:
        self._url = target_url(channel.url, channel.base_url)
        self._secret = channel.secret

    def secrets(self) -> list[str]:
        # A receiver may echo the key alone, without its whsec_ prefix.
        key = self.channel.secret.get_secret_value().removeprefix("whsec_")
        return [*super().secrets(), key]

    def plan(self, out: Outbound) -> list[Part[WebhookData]]:
        data = {
            "job_id": out.job_id,
            "workflow": out.workflow.model_dump(mode="json") if out.workflow else None,
            "contact_id": out.contact_id,
            "channel_id": out.channel_id,
            "recipient": out.recipient,
            "message": out.message.model_dump(mode="json", exclude_none=True),
        }
        return [Part(0, WebhookData(data))]

    def send_part(self, out: Outbound, part: Part[WebhookData]) -> list[str]:
        stamp = int(time.time())
        instant = datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        body = json_bytes({"type": "message.send", "timestamp": instant, "data": part.payload.data})
        msg_id = webhook_id(out.job_id)
        headers = {
            "webhook-id": msg_id,
            "webhook-timestamp": str(stamp),
            # Signed over the id as sent: the receiver verifies with the header's value.
            "webhook-signature": sign(self._secret.get_secret_value(), msg_id, stamp, body),
            "content-type": "application/json",
        }
        response = self.http.request("POST", self._url, what=WHAT, content=body, headers=headers)
        if response.is_success:
            answer = json_object(response)
            found = answer.get("message_id", answer.get("id"))
            return [] if found is None else [str(found)]
        raise classify(read(response), ERRORS, WHAT, mask=self.mask)


def read(response: Response) -> Answer:
    """A receiver's answer: its JSON ``error`` (or ``message``) field, if any."""
    answer = json_object(response)
    said = answer.get("error") or answer.get("message")
    text = f"HTTP {response.status_code}: {said}" if said else ""
    return Answer(response.status_code, text=text, retry_after=retry_after(response))
