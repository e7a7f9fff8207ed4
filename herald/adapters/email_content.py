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

Attachments are fetched when a part is delivered, never while planning, with a cap per file
and per email (:data:`MAX_ATTACHMENT_BYTES`, :data:`MAX_ATTACHMENTS_BYTES`). Error messages
name the file, never its URL (signed URLs carry tokens).
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

import httpx
import nh3

from herald.errors import InvalidContent, ProviderUnavailable
from herald.job import (
    MAX_EMAIL_ATTACHMENTS,
    AnyMessage,
    Attachment,
    EmailMessage,
    MediaMessage,
    TextMessage,
)

if TYPE_CHECKING:  # herald.adapters imports this module; keep the import one-way at runtime
    from herald.adapters.http import ClientPool

#: The largest attachment an email may carry, in bytes.
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
#: The largest total of an email's attachments, in bytes.
MAX_ATTACHMENTS_BYTES = 25 * 1024 * 1024
#: Used when neither the server nor the file name tells the type.
DEFAULT_CONTENT_TYPE = "application/octet-stream"

#: nh3's default tags and attributes, plus inline styles (common in email) limited to
#: presentational properties: no positioning, no ``background-image`` (remote loads).
_ATTRIBUTES: dict[str, set[str]] = {
    **{tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()},
    "*": {"style", "align"},
}
_STYLE_PROPERTIES = {
    "color",
    "background-color",
    "font-family",
    "font-size",
    "font-style",
    "font-weight",
    "line-height",
    "text-align",
    "text-decoration",
    "vertical-align",
    "margin",
    "margin-top",
    "margin-bottom",
    "margin-left",
    "margin-right",
    "padding",
    "padding-top",
    "padding-bottom",
    "padding-left",
    "padding-right",
    "border",
    "border-collapse",
    "width",
    "max-width",
    "height",
}


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


@dataclass(frozen=True)
class File:
    """A fetched attachment."""

    filename: str
    content_type: str
    data: bytes


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


def sanitize(html: str) -> str:
    """HTML with scripts, event handlers and unsafe URLs removed (nh3, inline styles kept)."""
    return nh3.clean(html, attributes=_ATTRIBUTES, filter_style_properties=_STYLE_PROPERTIES)


_BREAK_AFTER = {"tr", "div", "dt", "dd"}
_PARAGRAPHS = {
    "p",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "ul",
    "ol",
    "dl",
    "table",
    "blockquote",
    "pre",
    "hr",
    "figure",
}


class _TextOf(HTMLParser):
    """Plain text of (sanitised) HTML: paragraphs and line breaks kept, links as ``text (url)``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._links: list[tuple[str | None, int]] = []
        self._lists: list[int] = []  # per open list: the next number, 0 for bullets
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag in _PARAGRAPHS:
            self.out.append("\n\n")
        if tag in ("ul", "ol"):
            self._lists.append(1 if tag == "ol" else 0)
        elif tag == "li":
            self.out.append("\n" + self._bullet())
        elif tag == "a":
            self._links.append((found.get("href"), len(self.out)))
        elif tag == "img" and found.get("alt"):
            self.out.append(found["alt"] or "")
        elif tag in ("td", "th"):
            self.out.append(" ")
        elif tag == "pre":
            self._pre += 1
        if tag in ("br", "hr"):
            self.out.append("\n")

    def _bullet(self) -> str:
        if not self._lists or self._lists[-1] == 0:
            return "- "
        number = self._lists[-1]
        self._lists[-1] += 1
        return f"{number}. "

    def handle_endtag(self, tag: str) -> None:
        if tag in ("ul", "ol") and self._lists:
            self._lists.pop()
        elif tag == "a" and self._links:
            href, start = self._links.pop()
            label = "".join(self.out[start:]).strip()
            if href and urlsplit(href).scheme in ("http", "https", "mailto"):
                shown = href.removeprefix("mailto:")
                if shown != label:
                    self.out.append(f" ({shown})" if label else shown)
        elif tag == "pre":
            self._pre = max(0, self._pre - 1)
        if tag in _PARAGRAPHS:
            self.out.append("\n\n")
        elif tag in _BREAK_AFTER:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        self.out.append(data if self._pre else re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    """A plain-text alternative of ``html`` (paragraphs, line breaks and link URLs kept)."""
    parser = _TextOf()
    parser.feed(html)
    parser.close()
    lines = [line.strip(" \t") for line in "".join(parser.out).split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def quick_reply_menu(text: str, titles: list[str]) -> str:
    """A text with its quick replies as a numbered menu below it."""
    menu = "\n".join(f"{number}. {title}" for number, title in enumerate(titles, start=1))
    return f"{text}\n\n{menu}" if menu else text


def filename_of(attachment: Attachment, index: int) -> str:
    """The attachment's file name: given, else the URL's last path segment, else numbered."""
    if attachment.filename:
        return attachment.filename
    segment = unquote(urlsplit(attachment.url).path.rsplit("/", 1)[-1])
    return segment or f"attachment-{index + 1}"


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
    if "\n" in subject or "\r" in subject:
        raise InvalidContent(f"{what}: the subject may not contain line breaks")
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


def fetch_attachments(pool: ClientPool, email: Email, *, what: str) -> list[File]:
    """Download an email's attachments, in order, within the size caps."""
    files: list[File] = []
    total = 0
    for index, item in enumerate(email.attachments):
        name = filename_of(item, index)
        data, served_type = _fetch(pool, item.url, name, what)
        total += len(data)
        if total > MAX_ATTACHMENTS_BYTES:
            raise InvalidContent(
                f"{what}: attachments total over {MAX_ATTACHMENTS_BYTES // (1024 * 1024)} MB"
                f" (reached at {name}); the limit per email is"
                f" {MAX_ATTACHMENTS_BYTES // (1024 * 1024)} MB"
            )
        files.append(File(name, content_type_of(name, served_type), data))
    return files


def content_type_of(filename: str, served: str | None) -> str:
    """The type the server gave, unless it is missing or generic; else guessed by extension."""
    kind = (served or "").split(";", 1)[0].strip().lower()
    if kind and kind != DEFAULT_CONTENT_TYPE:
        return kind
    return mimetypes.guess_type(filename)[0] or DEFAULT_CONTENT_TYPE


def _fetch(pool: ClientPool, url: str, name: str, what: str) -> tuple[bytes, str | None]:
    """One attachment's bytes and served type; stops reading past the per-file cap."""
    cap_mb = MAX_ATTACHMENT_BYTES // (1024 * 1024)
    too_big = InvalidContent(
        f"{what}: attachment {name} is over {cap_mb} MB; the limit per attachment is {cap_mb} MB"
    )
    with pool.client() as client:
        try:
            with client.stream("GET", url, follow_redirects=True) as response:
                _check_status(response, name, what)
                length = response.headers.get("content-length", "")
                if length.isdigit() and int(length) > MAX_ATTACHMENT_BYTES:
                    raise too_big
                chunks, size = [], 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > MAX_ATTACHMENT_BYTES:
                        raise too_big
                    chunks.append(chunk)
                return b"".join(chunks), response.headers.get("content-type")
        except httpx.TransportError as exc:
            # A download is safe to repeat: never in doubt.
            raise ProviderUnavailable(
                f"{what}: could not fetch attachment {name} ({type(exc).__name__})"
            ) from exc
        except httpx.RequestError as exc:  # too many redirects, undecodable body
            raise InvalidContent(
                f"{what}: could not fetch attachment {name} ({type(exc).__name__})"
            ) from exc


def _check_status(response: httpx.Response, name: str, what: str) -> None:
    status = response.status_code
    if response.is_success:
        return
    if status == 429 or status >= 500:
        raise ProviderUnavailable(
            f"{what}: attachment {name} could not be fetched now (HTTP {status})"
        )
    if status in (404, 410):
        raise InvalidContent(f"{what}: attachment {name} was not found (HTTP {status})")
    raise InvalidContent(f"{what}: attachment {name} could not be fetched (HTTP {status})")
