"""SendGrid v3 adapter: ``POST {base}/v3/mail/send`` with a Bearer API key, one email per message.

The body (docs/channels/sendgrid.md): one personalization with the recipient, ``from``, the
subject, ``content`` as text/plain then text/html, attachments in base64, and Herald's
threading headers (see :mod:`herald.adapters.email.message`). A ``custom_payload`` is merged
over that body (its keys win), so a job can set any field SendGrid takes. SendGrid answers
202 with an empty body and the message id in ``X-Message-Id``. ``custom_args`` carry the
job id, which SendGrid's Event Webhook reports back on every event.
"""

from __future__ import annotations

import base64
import time
from email.utils import parseaddr
from typing import Any, ClassVar

from httpx import Response

from herald.adapters.answers import Answer, ErrorTable, classify, json_object, retry_after
from herald.adapters.base import Adapter, JsonBody, Outbound, Part
from herald.adapters.email.attachments import File, fetch_attachments
from herald.adapters.email.message import Email, compose
from herald.adapters.http import json_bytes
from herald.config import ChannelType, SendGridChannel
from herald.contract.errors import InvalidContent
from herald.contract.job import CustomPayload

API_URL = "https://api.sendgrid.com"
WHAT = "sendgrid mail send"

#: SendGrid has no codes beyond HTTP: the status rule of :mod:`herald.adapters.answers` is
#: its whole table (400 and 413 invalid_content, 401/403 auth_failed, 429 rate_limited,
#: 5xx provider_unavailable in doubt).
ERRORS: ErrorTable = {}


def address(value: str) -> dict[str, str]:
    """A SendGrid email object from ``Name <a@b>`` or ``a@b``."""
    name, email = parseaddr(value)
    found = {"email": email or value}
    if name:
        found["name"] = name
    return found


class SendGridAdapter(Adapter[SendGridChannel, Email | JsonBody]):
    """Sends emails (and default texts and media, as email) through SendGrid."""

    channel_type = ChannelType.SENDGRID
    takes_files = True
    config_type = SendGridChannel
    #: The whole request body must stay under this many bytes (SendGrid: 30 MB).
    message_max: ClassVar[int] = 30_000_000
    #: SendGrid refuses an empty subject; an empty one is sent as a single space.
    empty_subject: ClassVar[str] = " "

    def setup(self, channel: SendGridChannel) -> None:
        self._url = self.endpoint(API_URL, "/v3/mail/send")
        self._key = channel.api_key
        self._from = channel.from_address

    def plan(self, out: Outbound) -> list[Part[Email | JsonBody]]:
        """One email, or a raw ``custom_payload`` body; attachments are fetched at send."""
        msg = out.message
        if isinstance(msg, CustomPayload):
            return [Part(0, JsonBody({**self._envelope(out.recipient), **msg.payload}))]
        email = compose(
            msg,
            job_id=out.job_id,
            workflow_id=out.workflow.workflow_id if out.workflow else None,
            contact_id=out.contact_id,
            sender=self._from,
            recipient=out.recipient,
            what="sendgrid",
        )
        return [Part(0, email)]

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

    def send_part(self, out: Outbound, part: Part[Email | JsonBody]) -> list[str]:
        if isinstance(part.payload, Email):
            files = fetch_attachments(
                part.payload.attachments,
                what="sendgrid",
                allow_networks=self.fetch_allow_networks,
                deadline_s=self.deadline_s,
                library=self.library,
                files=out.files,
            )
            body = self.body(part.payload, files)
        else:
            body = part.payload.body
        # Every event of the Event Webhook carries it back (docs/webhooks.md#sendgrid).
        custom_args = body.get("custom_args")
        body = {**body, "custom_args": {**_dict(custom_args), "job_id": out.job_id}}
        data = json_bytes(body)
        if len(data) >= self.message_max:
            raise InvalidContent(
                f"sendgrid: the message is {len(data)} bytes; it must be under"
                f" {self.message_max // 1_000_000} MB"
            )
        headers = {
            "authorization": f"Bearer {self._key.get_secret_value()}",
            "content-type": "application/json",
        }
        response = self.http.request("POST", self._url, what=WHAT, content=data, headers=headers)
        if response.is_success:
            found = response.headers.get("x-message-id")
            return [found] if found else []
        raise classify(read(response), ERRORS, WHAT, mask=self.mask)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def reset_after(response: Response) -> float | None:
    """Seconds until ``X-RateLimit-Reset`` (epoch seconds), never negative; else Retry-After."""
    value = response.headers.get("x-ratelimit-reset")
    try:
        return max(0.0, float(value) - time.time()) if value is not None else retry_after(response)
    except ValueError:
        return retry_after(response)


def read(response: Response) -> Answer:
    """SendGrid's ``{"errors": [{"message", "field"}]}`` (the first error) as an :class:`Answer`."""
    errors = json_object(response).get("errors")
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    said = str(first.get("message") or "")
    if said and first.get("field"):
        said += f" (field {first['field']})"
    text = f"HTTP {response.status_code}: {said}" if said else ""
    return Answer(response.status_code, text=text, retry_after=reset_after(response))
