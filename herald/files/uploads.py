"""What providers know library files as, shared by the fleet: one upload per file and
provider account.

A provider's id for an uploaded file (WhatsApp's media id, Telegram's ``file_id``, Meta's
``attachment_id``) is kept under ``herald:files:provider:<scope>:<file_id>`` for the id's
lifetime. The first worker to need one takes the upload lock (SET NX with a TTL) and
uploads; the others wait for the id it writes (or take the lock over if it gave up), so
200 jobs on two workers upload once.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import redis

from herald.contract.errors import ProviderUnavailable
from herald.store.keys import file_provider_key, file_upload_key
from herald.store.scripts import FILE_UNLOCK

R = TypeVar("R")

#: Seconds between looks at an upload another worker is making.
POLL_S = 0.05


@dataclass(frozen=True)
class Uploaded(Generic[R]):
    """What an upload gave: the provider's id, how long it lives, and (when the upload was
    itself a send, as on Telegram) what else the call returned."""

    provider_id: str
    ttl_s: float
    result: R


class Uploads:
    """The provider ids of library files, in Redis, and the lock around each upload."""

    def __init__(self, client: redis.Redis, *, wait_s: float = 30.0) -> None:
        #: A client that decodes responses.
        self.client = client
        #: How long a worker waits for another's upload before it gives up (transient).
        self.wait_s = wait_s
        self._unlock = FILE_UNLOCK.on(client)

    def known(self, scope: str, file_id: str) -> str | None:
        """The id ``scope`` knows the file by, if it was uploaded there and has not expired."""
        found = self.client.get(file_provider_key(scope, file_id))
        return None if found is None else str(found)

    def forget(self, scope: str, file_id: str) -> None:
        """Drop a provider id the provider no longer takes (the next send uploads again)."""
        self.client.delete(file_provider_key(scope, file_id))

    def once(
        self, scope: str, file_id: str, upload: Callable[[], Uploaded[R]]
    ) -> tuple[str, Uploaded[R] | None]:
        """The provider id of the file on ``scope``: known already (``None`` second), or
        uploaded now by this worker (the :class:`Uploaded`), waiting while another worker
        uploads it. :class:`ProviderUnavailable` when none appears within ``wait_s``."""
        lock = file_upload_key(scope, file_id)
        give_up = time.monotonic() + self.wait_s
        while True:
            found = self.known(scope, file_id)
            if found is not None:
                return found, None
            token = uuid.uuid4().hex
            lock_ms = int((self.wait_s + 5) * 1000)
            if self.client.set(lock, token, nx=True, px=lock_ms):
                try:
                    found = self.known(scope, file_id)  # written just before we locked
                    if found is not None:
                        return found, None
                    made = upload()
                    self.client.set(
                        file_provider_key(scope, file_id),
                        made.provider_id,
                        px=max(1000, int(made.ttl_s * 1000)),
                    )
                    return made.provider_id, made
                finally:
                    self._unlock(keys={"lock": lock}, args={"token": token})
            if time.monotonic() >= give_up:
                raise ProviderUnavailable(
                    f"file {file_id}: another worker is still uploading it; try later"
                )
            time.sleep(POLL_S)
