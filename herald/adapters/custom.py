"""Custom channel adapter: a Standard Webhooks ``message.send`` POST (CONTRACT §6).

The body is serialised once and signed over exactly those bytes; ``webhook-id``
is the job id, so the receiver can drop a resend. The timestamp is taken when
the request leaves (a retry an hour later must still pass the receiver's
5-minute tolerance), so :meth:`CustomAdapter.plan` prepares only ``data``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

from httpx import Response

from herald.adapters.base import Adapter, Outbound, Part
from herald.adapters.http import json_or_none, retry_after
from herald.config import ChannelType, CustomChannel
from herald.contract.errors import (
    AuthFailed,
    InvalidContent,
    ProviderUnavailable,
    RateLimited,
    SendError,
)

WHAT = "custom webhook"


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


def target_url(url: str, base_url: str | None) -> str:
    """``url`` with its scheme and host (and a path prefix) taken from ``base_url``, if set."""
    if not base_url:
        return url
    base, parts = urlsplit(base_url), urlsplit(url)
    path = base.path.rstrip("/") + parts.path
    return urlunsplit((base.scheme, base.netloc, path, parts.query, parts.fragment))


class CustomAdapter(Adapter[CustomChannel]):
    """Posts each message, signed, to the channel's webhook."""

    channel_type = ChannelType.CUSTOM
    config_type = CustomChannel
    dedupes = True

    def setup(self, channel: CustomChannel) -> None:
        self._url = target_url(channel.url, channel.base_url)
        self._secret = channel.secret

    def plan(self, out: Outbound) -> list[Part]:
        data = {
            "job_id": out.job_id,
            "workflow": out.workflow.model_dump(mode="json") if out.workflow else None,
            "contact_id": out.contact_id,
            "channel_id": out.channel_id,
            "recipient": out.recipient,
            "message": out.message.model_dump(mode="json", exclude_none=True),
        }
        return [Part(0, {"data": data})]

    def send_part(self, out: Outbound, part: Part) -> list[str]:
        stamp = int(time.time())
        instant = datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        doc = {"type": "message.send", "timestamp": instant, "data": part.payload["data"]}
        body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
        secret = self._secret.get_secret_value()
        headers = {
            "webhook-id": out.job_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": sign(secret, out.job_id, stamp, body),
            "content-type": "application/json",
        }
        response = self.http.request("POST", self._url, what=WHAT, content=body, headers=headers)
        if response.is_success:
            answer = json_or_none(response)
            found = answer.get("message_id", answer.get("id")) if isinstance(answer, dict) else None
            return [] if found is None else [str(found)]
        raise _error(response, secret)


def _error(response: Response, secret: str) -> SendError:
    """The Herald error for a non-2xx answer: 401/403, 429, other 4xx, 5xx."""
    status = response.status_code
    answer = json_or_none(response)
    said = (answer.get("error") or answer.get("message")) if isinstance(answer, dict) else None
    message = f"{WHAT}: HTTP {status}" + (f": {str(said)[:200]}" if said else "")
    key = secret.removeprefix("whsec_")
    if key:  # a receiver echoing the secret must not leak it into events and logs
        message = message.replace(key, "****")
    code = str(status)
    if status in (401, 403):
        return AuthFailed(message, provider_code=code)
    if status == 429:
        return RateLimited(message, provider_code=code, retry_after=retry_after(response))
    if 400 <= status < 500:
        return InvalidContent(message, provider_code=code)
    # 5xx may have been processed; 1xx/3xx were not (redirects are not followed).
    return ProviderUnavailable(message, provider_code=code, in_doubt=status >= 500)
