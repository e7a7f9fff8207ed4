"""Attachment files for the email channels: ``GET /files[/<size>]/<name>``.

Serves deterministic bytes (:func:`file_bytes`) of ``size`` bytes (1,024 by default) with a
content type guessed from the name, so email tests can fetch attachments from the sandbox and
compare the bytes that arrive. Names starting with ``missing`` answer 404, ``broken`` 503.
"""

from __future__ import annotations

import hashlib
import mimetypes

from herald.testing.sandbox.server import Answer, Incoming, Sandbox, route

#: Bytes served when the path gives no size.
DEFAULT_FILE_SIZE = 1024
#: Name prefixes that always fail: (status, text).
_FILE_FAILURES: dict[str, tuple[int, str]] = {
    "missing": (404, "Not Found"),
    "broken": (503, "Service Unavailable"),
}


def file_bytes(name: str, size: int = DEFAULT_FILE_SIZE) -> bytes:
    """The bytes the sandbox serves for ``name``: its SHA-256 repeated to ``size``."""
    block = hashlib.sha256(name.encode()).digest()
    return (block * (size // len(block) + 1))[:size]


@route("files", r"^/files/(?:(?P<size>\d{1,10})/)?(?P<name>[^/]+)$")
def files(box: Sandbox, req: Incoming) -> Answer:
    """``GET /files[/<size>]/<name>``: deterministic file bytes."""
    if req.method != "GET":
        return Answer.of(405, "Method Not Allowed")
    name = req.match["name"]
    for prefix, (status, text) in _FILE_FAILURES.items():
        if name.startswith(prefix):
            return Answer.of(status, text)
    size = int(req.match["size"] or DEFAULT_FILE_SIZE)
    kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return Answer(200, file_bytes(name, size), {"content-type": kind})
