"""Signed, expiring URLs of library files, for providers that only take URLs.

``{HERALD_FILES_PUBLIC_URL}/files/<id>?expires=<unix s>&signature=<sig>``: the signature is
HMAC-SHA256 of ``<id>.<expires>`` under the signing key, URL-safe base64 without padding.
``herald webhooks`` checks both on every request (:func:`verify`). Expiry times are
rounded up to the hour, so the sends of one broadcast share one URL (providers cache by
URL) and a URL lives between ``ttl`` and ``ttl`` + 1 h.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import secrets
import time
from urllib.parse import quote

import redis

from herald.store.keys import FILES_SIGNING_KEY

#: Expiry times are multiples of this many seconds.
ROUND_S = 3600


def signature(key: bytes, file_id: str, expires: int) -> str:
    """The signature of ``file_id`` until ``expires``."""
    mac = hmac.new(key, f"{file_id}.{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def signed_path(key: bytes, file_id: str, *, ttl_s: float, now: float | None = None) -> str:
    """``/files/<id>?expires=...&signature=...``, valid for ``ttl_s`` at least."""
    moment = time.time() if now is None else now
    expires = math.ceil((moment + ttl_s) / ROUND_S) * ROUND_S
    sig = signature(key, file_id, expires)
    return f"/files/{quote(file_id, safe='')}?expires={expires}&signature={sig}"


def verify(
    key: bytes, file_id: str, expires: str, given: str, *, now: float | None = None
) -> str | None:
    """Why a request for ``file_id`` is refused, or None when its signature holds and it
    has not expired."""
    if not expires.isdigit() or len(expires) > 12:
        return "no valid expiry"
    if int(expires) <= (time.time() if now is None else now):
        return "the link has expired"
    if not hmac.compare_digest(signature(key, file_id, int(expires)), given):
        return "the signature does not match"
    return None


def signing_key(configured: str | None, client: redis.Redis) -> bytes:
    """``HERALD_FILES_SIGNING_KEY`` when set; else the fleet's own key, made once in Redis
    (SET NX), so workers and ``herald webhooks`` sign and check alike with no setting."""
    if configured:
        return configured.encode()
    client.set(FILES_SIGNING_KEY, secrets.token_hex(32), nx=True)
    found = client.get(FILES_SIGNING_KEY)
    if found is None:  # deleted between the two calls: make it again
        return signing_key(configured, client)
    return found.encode() if isinstance(found, str) else bytes(found)
