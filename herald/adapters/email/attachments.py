"""Attachment downloads for the email channels: within size caps, with one error map.

Attachments are fetched when a part is sent, never while planning, through the safe fetcher
(:mod:`herald.adapters.fetch`: public addresses only unless allow-listed, redirects checked,
one deadline for all of an email's attachments, bodies never inflated past a cap), with a cap
per file and per email (:data:`MAX_ATTACHMENT_BYTES`, :data:`MAX_ATTACHMENTS_BYTES`). Error
messages name the file, never its URL (signed URLs carry tokens).
"""

from __future__ import annotations

import mimetypes
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from herald.adapters.deadline import Deadline
from herald.adapters.fetch import Fetcher, Network, TooLarge
from herald.contract.errors import InvalidContent
from herald.contract.job import Attachment
from herald.files.library import Library
from herald.files.store import FileInfo

#: The largest attachment an email may carry, in bytes.
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
#: The largest total of an email's attachments, in bytes.
MAX_ATTACHMENTS_BYTES = 25 * 1024 * 1024
#: Used when neither the server nor the file name tells the type.
DEFAULT_CONTENT_TYPE = "application/octet-stream"
#: How long fetching all of an email's attachments may take unless told (keep it well
#: under the job lease: a fetch still running when the lease ends sends the email twice).
DEFAULT_DEADLINE_S = 30.0

_MB = 1024 * 1024


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
    if attachment.url is None:
        return f"attachment-{index + 1}"  # a library file's name is filled in before
    segment = unquote(urlsplit(attachment.url).path.rsplit("/", 1)[-1])
    return segment or f"attachment-{index + 1}"


def fetch_attachments(
    attachments: Sequence[Attachment],
    *,
    what: str,
    allow_networks: Sequence[Network] = (),
    deadline_s: float | None = None,
    library: Library | None = None,
    files: Mapping[str, FileInfo] | None = None,
) -> list[File]:
    """Download an email's attachments, in order, within the size caps and ``deadline_s``
    seconds for all of them (None: :data:`DEFAULT_DEADLINE_S`, never unbounded).

    ``allow_networks`` are fetched from although not public (the setting
    ``fetch_allow_networks``). The fetcher makes its own connections, each to an address it
    checked (a pooled client would reuse connections by host name, unchecked). A library
    file (``file_id``) is not fetched: its bytes come from ``library``, with the content
    type detected when it was added (``files``, the pipeline's descriptions).
    """
    fetcher = Fetcher(allow_networks=tuple(allow_networks))
    deadline = Deadline(DEFAULT_DEADLINE_S if deadline_s is None else deadline_s)
    found: list[File] = []
    total = 0
    for index, item in enumerate(attachments):
        name = filename_of(item, index)
        # Never read past what the email can still carry: at most the total cap in memory.
        limit = min(MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS_BYTES - total)
        if item.file_id is not None:
            found.append(_library_file(item.file_id, name, what, library, files or {}, limit))
            total += len(found[-1].data)
            continue
        try:
            got = fetcher.get(
                item.link, label=f"attachment {name}", what=what, limit=limit, deadline=deadline
            )
        except TooLarge:
            raise _too_large(name, what, per_file=limit == MAX_ATTACHMENT_BYTES) from None
        total += len(got.data)
        found.append(File(name, content_type_of(name, got.content_type), got.data))
    return found


def _library_file(
    file_id: str,
    name: str,
    what: str,
    library: Library | None,
    files: Mapping[str, FileInfo],
    limit: int,
) -> File:
    info = files.get(file_id)
    if library is None or info is None:
        raise InvalidContent(f"{what}: attachment {name}: no file library here")
    if info.size > limit:
        raise _too_large(name, what, per_file=limit == MAX_ATTACHMENT_BYTES)
    return File(name, info.content_type, library.read(file_id))


def _too_large(name: str, what: str, *, per_file: bool) -> InvalidContent:
    if per_file:
        cap = MAX_ATTACHMENT_BYTES // _MB
        return InvalidContent(
            f"{what}: attachment {name} is over {cap} MB; the limit per attachment is {cap} MB"
        )
    cap = MAX_ATTACHMENTS_BYTES // _MB
    return InvalidContent(
        f"{what}: attachments total over {cap} MB (reached at {name}); the limit per email is"
        f" {cap} MB"
    )


def content_type_of(filename: str, served: str | None) -> str:
    """The type the server gave, unless it is missing or generic; else guessed by extension."""
    kind = (served or "").split(";", 1)[0].strip().lower()
    if kind and kind != DEFAULT_CONTENT_TYPE:
        return kind
    return mimetypes.guess_type(filename)[0] or DEFAULT_CONTENT_TYPE
