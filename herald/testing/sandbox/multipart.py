"""Reading ``multipart/form-data`` bodies (uploads), for the sandbox's providers."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP


@dataclass(frozen=True)
class FormPart:
    """One field of a form: its bytes, and the file name and type when it is a file."""

    data: bytes
    filename: str | None = None
    content_type: str | None = None

    @property
    def text(self) -> str:
        """The field as text."""
        return self.data.decode("utf-8", "replace")


def is_multipart(headers: dict[str, str]) -> bool:
    """Whether a request's body is a multipart form."""
    return headers.get("content-type", "").startswith("multipart/form-data")


def form(headers: dict[str, str], body: bytes) -> dict[str, FormPart]:
    """The fields of a multipart form by name (empty when the body is none)."""
    if not is_multipart(headers):
        return {}
    head = f"Content-Type: {headers['content-type']}\r\n\r\n".encode()
    message: Message = BytesParser(policy=HTTP).parsebytes(head + body)
    fields: dict[str, FormPart] = {}
    for part in message.iter_parts() if hasattr(message, "iter_parts") else []:
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        kind = part.get_content_type() if filename else None
        fields[name] = FormPart(data, filename, kind)
    return fields
