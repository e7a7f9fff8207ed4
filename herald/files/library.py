"""The file library as the pipeline and the adapters use it.

The pipeline looks up a job's files (:meth:`Library.infos`: an unknown id is
``invalid_job``) before any provider call; adapters read a file's bytes
(:meth:`Library.read`, kept in memory within a budget: files never change), obtain the id
a provider gave it (:attr:`Library.uploads`), or a signed URL (:meth:`Library.url`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

import redis

from herald.config import Settings
from herald.contract.errors import InvalidContent, InvalidJob
from herald.files import detect, limits, signing
from herald.files.store import FileInfo, FileMissing, FileStore, RedisFileStore
from herald.files.uploads import Uploads
from herald.store.connection import redis_client, resolve_urls

#: Bytes of library files a worker process keeps in memory (the most recently sent).
CACHE_BYTES = 64 * 1024 * 1024


class Library:
    """A file store, the provider ids of its files, and signed URLs to them."""

    def __init__(
        self,
        store: FileStore,
        uploads: Uploads,
        *,
        public_url: str | None,
        signing_key: Callable[[], bytes],
        url_ttl_s: float,
        cache_bytes: int = CACHE_BYTES,
    ) -> None:
        self.store = store
        self.uploads = uploads
        self.public_url = public_url.rstrip("/") if public_url else None
        self._signing_key = signing_key
        self._key: bytes | None = None
        self.url_ttl_s = url_ttl_s
        self.cache_bytes = cache_bytes
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cached = 0
        self._lock = threading.Lock()

    def infos(self, file_ids: Sequence[str]) -> dict[str, FileInfo]:
        """The descriptions of ``file_ids``; :class:`InvalidJob` naming any not there."""
        found = self.store.infos(file_ids)
        missing = [i for i in dict.fromkeys(file_ids) if i not in found]
        if missing:
            names = ", ".join(repr(i) for i in missing)
            raise InvalidJob(f"file_id {names} is not in the file library")
        return found

    def read(self, file_id: str) -> bytes:
        """A file's bytes (:class:`InvalidContent` if it was deleted since the job began)."""
        with self._lock:
            data = self._cache.get(file_id)
            if data is not None:
                self._cache.move_to_end(file_id)
                return data
        try:
            data = self.store.read(file_id)
        except FileMissing:
            raise InvalidContent(f"file {file_id} was deleted from the library") from None
        if len(data) <= self.cache_bytes // 4:
            with self._lock:
                if file_id not in self._cache:
                    self._cache[file_id] = data
                    self._cached += len(data)
                while self._cached > self.cache_bytes:
                    _, dropped = self._cache.popitem(last=False)
                    self._cached -= len(dropped)
        return data

    def close(self) -> None:
        """Release the Redis connections of the store and of the provider ids."""
        client = getattr(self.store, "client", None)
        if client is not None:
            client.close()
        self.uploads.client.close()

    @property
    def signing_key(self) -> bytes:
        """The key URLs are signed with, read (or made) on first use: building a library
        makes no connection."""
        if self._key is None:
            self._key = self._signing_key()
        return self._key

    def read_or_missing(self, file_id: str) -> bytes:
        """:meth:`read`, with :class:`FileMissing` for a file that is not there."""
        with self._lock:
            data = self._cache.get(file_id)
        return data if data is not None else self.store.read(file_id)

    def url(self, file_id: str) -> str:
        """A signed URL that serves the file (``herald webhooks``, ``/files/<id>``)."""
        if self.public_url is None:
            raise InvalidContent(
                f"file {file_id}: this channel takes files by URL, and no public URL is set"
                " (HERALD_FILES_PUBLIC_URL or HERALD_WEBHOOKS_PUBLIC_URL)"
            )
        path = signing.signed_path(self.signing_key, file_id, ttl_s=self.url_ttl_s)
        return self.public_url + path


def build_library(
    binary: redis.Redis,
    text: redis.Redis,
    *,
    max_bytes: int,
    quota_bytes: int,
    public_url: str | None,
    signing_key: str | None,
    url_ttl_s: float,
    wait_s: float,
) -> Library:
    """The library on Redis: ``binary`` does not decode responses, ``text`` does."""
    store = RedisFileStore(binary, max_bytes=max_bytes, quota_bytes=quota_bytes)
    return Library(
        store,
        Uploads(text, wait_s=wait_s),
        public_url=public_url,
        signing_key=lambda: signing.signing_key(signing_key, text),
        url_ttl_s=url_ttl_s,
    )


def library_from_settings(settings: Settings, *, max_connections: int) -> Library:
    """The file library on the state Redis (no connection is made yet)."""
    url = resolve_urls(settings).redis
    key = settings.files_signing_key
    return build_library(
        redis_client(url, max_connections=max_connections, decode=False),
        redis_client(url, max_connections=max_connections),
        max_bytes=settings.files_max_bytes,
        quota_bytes=settings.files_quota_bytes,
        public_url=settings.files_url,
        signing_key=key.get_secret_value() if key else None,
        url_ttl_s=settings.files_url_ttl_s,
        # Waiting for another worker's upload stays within a provider call's deadline.
        wait_s=settings.lease_s / 3,
    )


def add_file(
    store: FileStore, path: Path, *, name: str | None = None
) -> tuple[FileInfo, list[str]]:
    """Add the file at ``path`` (named ``name``, else its file name) with its detected
    content type; also the channel types it is too large for, one line each."""
    data = path.read_bytes()
    kind = detect.content_type(data)
    info = store.add(data, name=name or path.name, content_type=kind)
    return info, limits.warnings(detect.kind_of(kind), info.size)
