"""A file's content type, read from its bytes (never from its name).

puremagic (pure Python, no libmagic to install) knows the binary formats by their magic
numbers; bytes it does not know are ``text/plain`` when they are UTF-8 text without NUL,
else ``application/octet-stream``.
"""

from __future__ import annotations

from typing import Literal

import puremagic

OCTET_STREAM = "application/octet-stream"
TEXT = "text/plain"

Kind = Literal["image", "file", "video", "audio"]


def content_type(data: bytes) -> str:
    """The MIME type of ``data``, as its bytes say."""
    try:
        found = puremagic.from_string(data, mime=True)
    except (puremagic.PureError, ValueError):
        found = ""
    if found:
        return found.lower()
    if b"\x00" not in data[:8192]:
        try:
            data[:65536].decode("utf-8")
        except UnicodeDecodeError as exc:
            # A multi-byte character cut at the end of the sample is still text.
            if exc.start < 65536 - 4:
                return OCTET_STREAM
        return TEXT
    return OCTET_STREAM


def kind_of(content_type: str) -> Kind:
    """The attachment kind a content type is sent as when a job does not say."""
    major = content_type.split("/", 1)[0]
    if major == "image":
        return "image"
    if major == "video":
        return "video"
    if major == "audio":
        return "audio"
    return "file"
