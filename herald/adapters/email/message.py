"""Email content for the email channels (SMTP and SendGrid): one set of rules for both.

:func:`compose` turns a rendered message into an :class:`Email`: an ``email`` channel
response keeps its subject, its HTML (sanitised with nh3) and its plain text (derived from
the HTML when the job gives none); a default ``text`` message becomes a plain-text email
with an empty subject and its quick replies as a numbered menu; a default ``media`` message
becomes an email carrying the files, with their captions as the body.

Threading: respond.io shows one conversation per contact; mail clients group messages by
``In-Reply-To``/``References``. Herald approximates the grouping without storing anything:
every email of one workflow to one contact points at the same thread root id, derived from
``(workflow_id, contact_id)``, and each email's own ``Message-ID`` is derived from its job id
(so a resend of a job carries the same id and receivers can spot the duplicate).
Attachments stay URLs here; :mod:`herald.adapters.email.attachments` fetches them at send time.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from herald.adapters.email.attachments import filename_of
from herald.adapters.email.html import html_to_text, sanitize
from herald.contract.errors import InvalidContent
from herald.contract.job import (
    MAX_EMAIL_ATTACHMENTS,
    AnyMessage,
    Attachment,
    EmailMessage,
    MediaMessage,
    TextMessage,
    codepoint,
    control_character,
)


@dataclass(frozen=True)
class Email:
    """One email, ready for a wire format; attachments are still URLs."""

    sender: str
    recipient: str
    subject: str
    #: The plain-text body (or alternative to :attr:`html`); never empty.
    text: str
    html: str | None
    attachments: tuple[Attachment, ...]
    #: ``<...>``: the ``Message-ID`` header, derived from the job id.
    message_id: str
    #: ``<...>``: the thread root for ``In-Reply-To``/``References``, or None without a workflow.
    thread_id: str | None

    def thread_headers(self) -> dict[str, str]:
        """``Message-ID`` and, in a workflow, ``In-Reply-To`` and ``References``."""
        headers = {"Message-ID": self.message_id}
        if self.thread_id is not None:
            headers["In-Reply-To"] = self.thread_id
            headers["References"] = self.thread_id
        return headers


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def id_domain(sender: str) -> str:
    """The right-hand side of Herald's message ids: the sender's domain, else ``herald``."""
    _, at, domain = sender.rpartition("@")
    domain = domain.strip().rstrip(">").strip()
    return domain if at and re.fullmatch(r"[A-Za-z0-9.-]+", domain) else "herald"


def message_id(job_id: str, domain: str) -> str:
    """The ``Message-ID`` of a job's email: the same for every attempt of that job."""
    return f"<{_digest(job_id)}@{domain}>"


def thread_id(workflow_id: str | None, contact_id: str, domain: str) -> str | None:
    """The thread root id shared by a workflow's emails to one contact (None without one)."""
    if not workflow_id:
        return None
    return f"<thread-{_digest(f'{workflow_id}:{contact_id}')}@{domain}>"


def quick_reply_menu(text: str, titles: list[str]) -> str:
    """A text with its quick replies as a numbered menu below it."""
    menu = "\n".join(f"{number}. {title}" for number, title in enumerate(titles, start=1))
    return f"{text}\n\n{menu}" if menu else text


def _check_one_line(subject: str, attachments: tuple[Attachment, ...], what: str) -> None:
    """The subject and file names go into headers: no control characters.

    The job model refuses them in what the job wrote, so here they came from a variable's
    value (the subject) or from an attachment's URL (a name taken from ``%0D%0A`` in a path).
    """
    bad = control_character(subject)
    if bad is not None:
        raise InvalidContent(
            f"{what}: the subject may not contain line breaks or control characters"
            f" ({codepoint(bad)}, from a variable's value)"
        )
    for index, item in enumerate(attachments):
        bad = control_character(filename_of(item, index))
        if bad is not None:
            raise InvalidContent(
                f"{what}: attachment {index + 1}'s file name, taken from its URL, holds a"
                f" control character ({codepoint(bad)}); give the attachment a filename"
            )


def compose(
    message: AnyMessage,
    *,
    job_id: str,
    workflow_id: str | None,
    contact_id: str,
    sender: str,
    recipient: str,
    what: str,
) -> Email:
    """The email for a rendered message; :class:`InvalidContent` for types email cannot carry.

    ``what`` names the channel in error messages. Rendering already escaped the variable
    values inserted into the HTML; sanitising here removes what the template itself holds.
    """
    subject = ""
    html_part: str | None = None
    attachments: tuple[Attachment, ...] = ()
    if isinstance(message, EmailMessage):
        subject, attachments = message.subject, tuple(message.attachments)
        cleaned = sanitize(message.html)
        html_part = cleaned if cleaned.strip() else None
        text = message.text if message.text is not None else html_to_text(html_part or "")
    elif isinstance(message, TextMessage):
        titles = [reply.title for reply in message.quick_replies or []]
        text = quick_reply_menu(message.text, titles)
    elif isinstance(message, MediaMessage):
        attachments = tuple(message.attachments)
        text = "\n\n".join(
            item.caption or filename_of(item, index) for index, item in enumerate(attachments)
        )
    else:
        raise InvalidContent(f"{what} cannot send {message.type} messages")
    if len(attachments) > MAX_EMAIL_ATTACHMENTS:
        raise InvalidContent(
            f"{what}: {len(attachments)} attachments; an email carries at most"
            f" {MAX_EMAIL_ATTACHMENTS}"
        )
    _check_one_line(subject, attachments, what)
    if not text.strip() and html_part is None and not attachments:
        raise InvalidContent(f"{what}: the email has no body and no attachments")
    domain = id_domain(sender)
    return Email(
        sender=sender,
        recipient=recipient,
        subject=subject,
        text=text,
        html=html_part,
        attachments=attachments,
        message_id=message_id(job_id, domain),
        thread_id=thread_id(workflow_id, contact_id, domain),
    )
