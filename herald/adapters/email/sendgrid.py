"""SendGrid v3 adapter: ``POST {base}/v3/mail/send`` with a Bearer API key, one email per message.

The body follows PROVIDERS.md: one personalization with the recipient, ``from``, the subject,
``content`` as text/plain then text/html, attachments in base64, and Herald's threading
headers (see :mod:`herald.adapters.email_content`). A ``custom_payload`` is merged over
that body (its keys win), so a job can set any field SendGrid takes. SendGrid answers 202
with an empty body and the message id in ``X-Message-Id``.
"""

from __future__ import annotations

import base64
import json
import time
from email.utils import parseaddr
from typing import Any, ClassVar

from httpx import Response

from herald.adapters.base import Adapter, Outbound, Part
from herald.adapters.email.attachments import File, fetch_attachments
from herald.adapters.email.message import Email, compose
from herald.adapters.http import json_or_none, retry_after
from herald.config import ChannelType, SendGridChannel
from herald.contract.errors import (
    AuthFailed,
    InvalidContent,
    ProviderUnavailable,
    RateLimited,
    SendError,
)
from herald.contract.job import CustomPayload

API_URL = "https://api.sendgrid.com"
WHAT = "sendgrid mail send"

#: HTTP status -> error (PROVIDERS.md); other 4xx are invalid_content, other 5xx unavailable.
ERRORS: dict[int, type[SendError]] = {
    400: InvalidContent,
    413: InvalidContent,
    401: AuthFailed,
    403: AuthFailed,
    429: RateLimited,
    500: ProviderUnavailable,
    503: ProviderUnavailable,
}


def address(value: str) -> dict[str, str]:
    """A SendGrid email object from ``Name <a@b>`` or ``a@b``."""
    name, email = parseaddr(value)
    found = {"email": email or value}
    if name:
        found["name"] = name
    return found


class SendGridAdapter(Adapter[SendGridChannel]):
    """Sends emails (and default texts and media, as email) through SendGrid."""

    channel_type = ChannelType.SENDGRID
    config_type = SendGridChannel
    #: The whole request body must stay under this many bytes (SendGrid: 30 MB).
    message_max: ClassVar[int] = 30_000_000
    #: SendGrid refuses an empty subject; an empty one is sent as a single space.
    empty_subject: ClassVar[str] = " "

    def setup(self, channel: SendGridChannel) -> None:
        self._url = self.endpoint(API_URL, "/v3/mail/send")
        self._key = channel.api_key
        self._from = channel.from_address

    def plan(self, out: Outbound) -> list[Part]:
        msg = out.message
        if isinstance(msg, CustomPayload):
            body = {**self._envelope(out.recipient), **msg.payload}
            return [Part(0, {"body": body})]
        email = compose(
            msg,
            job_id=out.job_id,
            workflow_id=out.workflow.workflow_id if out.workflow else None,
            contact_id=out.contact_id,
            sender=self._from,
            recipient=out.recipient,
            what="sendgrid",
        )
        return [Part(0, {"email": email})]

    def _envelope(self, recipient: str) -> dict[str, Any]:
        return {"personalizations": [{"to": [{"email": recipient}]}], "from": address(self._from)}

    def body(self, email: Email, files: list[File]) -> dict[str, Any]:
        """The mail send body of an email and its fetched attachments."""
        content = [{"type": "text/plain", "value": email.text or " "}]
        if email.html is not None:
            content.append({"type": "text/html", "value": email.html})
        body: dict[str, Any] = {
            **self._envelope(email.recipient),
            "subject": email.subject or self.empty_subject,
            "content": content,
            "headers": email.thread_headers(),
        }
        if files:
            body["attachments"] = [
                {
                    "content": base64.b64encode(file.data).decode("ascii"),
                    "type": file.content_type,
                    "filename": file.filename,
                    "disposition": "attachment",
                }
                for file in files
            ]
        return body

    def send_part(self, out: Outbound, part: Part) -> list[str]:
        if "email" in part.payload:
            email: Email = part.payload["email"]
            files = fetch_attachments(self.http, email.attachments, what="sendgrid")
            body = self.body(email, files)
        else:
            body = part.payload["body"]
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        if len(data) >= self.message_max:
            raise InvalidContent(
                f"sendgrid: the message is {len(data)} bytes; it must be under"
                f" {self.message_max // 1_000_000} MB"
            )
        key = self._key.get_secret_value()
        headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
        response = self.http.request("POST", self._url, what=WHAT, content=data, headers=headers)
        if response.is_success:
            found = response.headers.get("x-message-id")
            return [found] if found else []
        raise _error(response, key)


def reset_after(response: Response) -> float | None:
    """Seconds until ``X-RateLimit-Reset`` (epoch seconds), never negative; else Retry-After."""
    value = response.headers.get("x-ratelimit-reset")
    try:
        return max(0.0, float(value) - time.time()) if value is not None else retry_after(response)
    except ValueError:
        return retry_after(response)


def _error(response: Response, key: str) -> SendError:
    """The Herald error for a non-2xx answer (PROVIDERS.md table)."""
    status = response.status_code
    answer = json_or_none(response)
    errors = answer.get("errors") if isinstance(answer, dict) else None
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    said = str(first.get("message") or "")[:200]
    if first.get("field"):
        said += f" (field {first['field']})"
    message = f"{WHAT}: HTTP {status}" + (f": {said}" if said else "")
    message = message.replace(key, "****") if key else message
    code = str(status)
    if status == 429:
        return RateLimited(message, provider_code=code, retry_after=reset_after(response))
    cls = ERRORS.get(status)
    if cls is None:
        cls = InvalidContent if 400 <= status < 500 else ProviderUnavailable
    # A 5xx may have been processed; 1xx/3xx (redirects are not followed) were not.
    return cls(message, provider_code=code, in_doubt=status >= 500)
