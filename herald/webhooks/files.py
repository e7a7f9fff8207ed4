"""``GET /files/<id>?expires=...&signature=...``: library files for providers that take URLs.

Every request is checked: a signature that does not match, or a link past its expiry, is
403 (the answer never tells whether such a file exists); a valid link to a deleted file is
404. A file is served with the content type detected when it was added, never sniffed
(``X-Content-Type-Options: nosniff``), in a sandbox (``Content-Security-Policy: sandbox``:
an HTML file runs no script on Herald's host). There is no listing: ``/files`` is 404.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from herald.files import signing
from herald.files.library import Library
from herald.files.store import FileMissing


class FileServer:
    """Serves signed links of one file library."""

    def __init__(self, library: Library) -> None:
        self.library = library

    async def handle(self, request: Request) -> Response:
        """Answer one request for a library file."""
        file_id = request.path_params["file_id"]
        key = await run_in_threadpool(lambda: self.library.signing_key)
        refused = signing.verify(
            key,
            file_id,
            request.query_params.get("expires", ""),
            request.query_params.get("signature", ""),
        )
        if refused is not None:
            return JSONResponse({"error": f"refused: {refused}"}, status_code=403)
        info = await run_in_threadpool(self.library.store.info, file_id)
        if info is None:
            return JSONResponse({"error": "no such file"}, status_code=404)
        try:
            data = (
                b""
                if request.method == "HEAD"
                else await run_in_threadpool(self.library.read_or_missing, file_id)
            )
        except FileMissing:
            return JSONResponse({"error": "no such file"}, status_code=404)
        headers = {
            "x-content-type-options": "nosniff",
            "content-security-policy": "sandbox",
            "cache-control": "private, max-age=3600",
            "content-disposition": f"inline; filename*=UTF-8''{quote(info.name, safe='')}",
        }
        if request.method == "HEAD":
            headers["content-length"] = str(info.size)
        return Response(data, media_type=info.content_type, headers=headers)
