"""Where the file library keeps its files: the :class:`FileStore` interface, and Redis.

Files are immutable: :meth:`FileStore.add` gives every file a new id (a new version of a
brochure is a new file), and nothing rewrites a file's bytes or description afterwards,
so a worker may keep what it read of a file for as long as it likes.

:class:`RedisFileStore`, the default, keeps each file as chunks of at most
:data:`CHUNK_BYTES` under ``herald:files:`` (:mod:`herald.store.keys`), with a per-file cap
and a total quota (``HERALD_FILES_MAX_BYTES``, ``HERALD_FILES_QUOTA_BYTES``): the embedded
Redis needs nothing more. Another backend (an S3-compatible bucket) implements the same
five methods: its :meth:`add` puts the bytes as one object named by the id and the
description as the object's metadata (or in Redis, for :meth:`infos` in one round trip),
:meth:`read` gets the object; docs/content.md#the-file-library says how to plug one in.
"""

from __future__ import annotations

import hashlib
import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, cast

import redis

from herald.contract.errors import FileRefused
from herald.store.keys import (
    FILES_INDEX_KEY,
    FILES_USED_KEY,
    file_chunk_key,
    file_meta_key,
)
from herald.store.scripts import FILE_DELETE, FileDeleteKeys

#: The largest chunk of a file kept under one Redis key (1 MiB: one value never blocks
#: Redis for long, and a read streams chunk by chunk).
CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class FileInfo:
    """One library file's description, fixed when it was added."""

    id: str
    name: str
    size: int
    #: Detected from the bytes when the file was added; served and sent as it is.
    content_type: str
    #: Hex SHA-256 of the bytes.
    sha256: str
    #: When the file was added: UTC ISO 8601 with ms and ``Z``.
    created_at: str

    def as_json(self) -> dict[str, Any]:
        """The description as JSON data (``herald files show``)."""
        return asdict(self)


class FileMissing(LookupError):
    """Raised when a file's bytes are asked for and the file is not (or no longer) there."""


def new_file_id() -> str:
    """A new library file id: ``f_`` and 24 hex digits (never reused)."""
    return f"f_{uuid.uuid4().hex[:24]}"


class FileStore(ABC):
    """A shared store of immutable files, by id."""

    @abstractmethod
    def add(self, data: bytes, *, name: str, content_type: str) -> FileInfo:
        """Keep ``data`` as a new file; :class:`FileRefused` when it does not fit."""

    @abstractmethod
    def infos(self, file_ids: Sequence[str]) -> dict[str, FileInfo]:
        """The descriptions of those of ``file_ids`` that exist (one round trip)."""

    @abstractmethod
    def read(self, file_id: str) -> bytes:
        """A file's bytes; :class:`FileMissing` when it is not there."""

    @abstractmethod
    def list(self) -> list[FileInfo]:
        """Every file, oldest first."""

    @abstractmethod
    def delete(self, file_id: str) -> bool:
        """Remove a file; True if it was there."""

    def info(self, file_id: str) -> FileInfo | None:
        """One file's description, or None."""
        return self.infos([file_id]).get(file_id)


def _stamp(now: datetime) -> str:
    return now.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class RedisFileStore(FileStore):
    """Files as chunks in Redis, within a per-file cap and a total quota.

    ``client`` must not decode responses (chunks are bytes).
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        max_bytes: int,
        quota_bytes: int,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        self.client = client
        self.max_bytes = max_bytes
        self.quota_bytes = quota_bytes
        self.chunk_bytes = chunk_bytes
        self._delete = FILE_DELETE.on(client)

    def add(self, data: bytes, *, name: str, content_type: str) -> FileInfo:
        size = len(data)
        if size == 0:
            raise FileRefused(f"{name} is empty")
        if size > self.max_bytes:
            raise FileRefused(
                f"{name} is {size} bytes; the largest file the library takes is"
                f" {self.max_bytes} (HERALD_FILES_MAX_BYTES)"
            )
        # Reserve the bytes first: two adds at once can never both pass the quota.
        used = int(self.client.incrby(FILES_USED_KEY, size))
        if used > self.quota_bytes:
            self.client.decrby(FILES_USED_KEY, size)
            raise FileRefused(
                f"{name} ({size} bytes) does not fit: the library holds {used - size} of"
                f" {self.quota_bytes} bytes (HERALD_FILES_QUOTA_BYTES); delete files first"
            )
        now = datetime.now(UTC)
        info = FileInfo(
            id=new_file_id(),
            name=name,
            size=size,
            content_type=content_type,
            sha256=hashlib.sha256(data).hexdigest(),
            created_at=_stamp(now),
        )
        chunks = range(0, size, self.chunk_bytes)
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for index, start in enumerate(chunks):
                    pipe.set(file_chunk_key(info.id, index), data[start : start + self.chunk_bytes])
                pipe.execute()
            with self.client.pipeline(transaction=True) as pipe:
                # The description last: a file is there once its description is.
                pipe.hset(
                    file_meta_key(info.id),
                    mapping={
                        "name": info.name,
                        "size": info.size,
                        "content_type": info.content_type,
                        "sha256": info.sha256,
                        "created_at": info.created_at,
                        "chunks": len(chunks),
                    },
                )
                pipe.zadd(FILES_INDEX_KEY, {info.id: int(now.timestamp() * 1000)})
                pipe.execute()
        except redis.RedisError:
            self.client.decrby(FILES_USED_KEY, size)
            self.client.delete(*(file_chunk_key(info.id, i) for i in range(len(chunks))))
            raise
        return info

    def infos(self, file_ids: Sequence[str]) -> dict[str, FileInfo]:
        wanted = list(dict.fromkeys(file_ids))
        if not wanted:
            return {}
        with self.client.pipeline(transaction=False) as pipe:
            for file_id in wanted:
                pipe.hgetall(file_meta_key(file_id))
            found = pipe.execute()
        return {
            file_id: _info(file_id, raw) for file_id, raw in zip(wanted, found, strict=True) if raw
        }

    def _chunks(self, file_id: str) -> int | None:
        raw = self.client.hget(file_meta_key(file_id), "chunks")
        return None if raw is None else int(raw)

    def read(self, file_id: str) -> bytes:
        count = self._chunks(file_id)
        if count is None:
            raise FileMissing(file_id)
        with self.client.pipeline(transaction=False) as pipe:
            for index in range(count):
                pipe.get(file_chunk_key(file_id, index))
            pieces = pipe.execute()
        if any(piece is None for piece in pieces):
            raise FileMissing(file_id)  # deleted while being read
        return b"".join(pieces)

    def list(self) -> list[FileInfo]:
        raw = cast(list[bytes | str], self.client.zrange(FILES_INDEX_KEY, 0, -1))
        ids = [_text(i) for i in raw]
        found = self.infos(ids)
        return [found[i] for i in ids if i in found]

    def delete(self, file_id: str) -> bool:
        count = self._chunks(file_id)
        if count is None:
            return False
        chunks = [file_chunk_key(file_id, index) for index in range(count)]
        keys: FileDeleteKeys = {
            "meta": file_meta_key(file_id),
            "index": FILES_INDEX_KEY,
            "used": FILES_USED_KEY,
            "chunks": chunks,
        }
        return bool(self._delete(keys=keys, args={"file_id": file_id}))

    def used(self) -> int:
        """Bytes the library holds."""
        return int(self.client.get(FILES_USED_KEY) or 0)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _info(file_id: str, raw: dict[Any, Any]) -> FileInfo:
    fields = {_text(k): _text(v) for k, v in raw.items()}
    return FileInfo(
        id=file_id,
        name=fields["name"],
        size=int(fields["size"]),
        content_type=fields["content_type"],
        sha256=fields["sha256"],
        created_at=fields["created_at"],
    )
