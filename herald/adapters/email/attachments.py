"""Attachment downloads for the email channels: within size caps, with one error map.

Attachments are fetched when a part is sent, never while planning, with a cap per file and
per email (:data:`MAX_ATTACHMENT_BYTES`, :data:`MAX_ATTACHMENTS_BYTES`). Error messages
name the file, never its URL (signed URLs carry tokens).
"""

from __future__ import annotations

import mimetypes
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import httpx

from herald.adapters.http import ClientPool
from herald.contract.errors import InvalidContent, ProviderUnavailable
from herald.contract.job import Attachment

#: The largest attachment an email may carry, in bytes.
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
#: The largest total of an email's attachments, in bytes.
MAX_ATTACHMENTS_BYTES = 25 * 1024 * 1024
#: Used when neither the server nor the file name tells the type.
DEFAULT_CONTENT_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class File:
    """A fetched attachment."""

    filename: str
    content_type: str
    data: bytes


def filename_of(attachment: Attachment, index: int) -> str:
    """The attachment's file name: given, else the URL's last path segment, else numbered."""
    if attachment.filename:
        return attachment.filename
    segment = unquote(urlsplit(attachment.url).path.rsplit("/", 1)[-1])
    return segment or f"attachment-{index + 1}"


def fetch_attachments(
    pool: ClientPool, attachments: Sequence[Attachment], *, what: str
) -> list[File]:
    """Download an email's attachments, in order, within the size caps."""
    files: list[File] = []
    total = 0
    for index, item in enumerate(attachments):
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
