"""The pipeline's file step: a message's library files, found and fitted to the channel.

Runs after rendering and before planning, so before any provider call: an unknown
``file_id`` is ``invalid_job`` naming it, a file too large for the channel
``invalid_content``. Each library attachment gets its kind (from the file's content type
when the job gives none) and its file name; on a channel whose adapter does not send
library files itself, it becomes a signed URL (docs/content.md#the-file-library).
"""

from __future__ import annotations

from collections.abc import Mapping

from herald.config import ChannelType
from herald.contract.errors import InvalidContent, InvalidJob
from herald.contract.job import AnyMessage, Attachment, EmailMessage, MediaMessage
from herald.files import limits
from herald.files.detect import kind_of
from herald.files.library import Library
from herald.files.store import FileInfo


def file_ids(message: AnyMessage) -> list[str]:
    """The library files a message sends, in order."""
    if not isinstance(message, MediaMessage | EmailMessage):
        return []
    return [a.file_id for a in message.attachments if a.file_id is not None]


def attach_files(
    message: AnyMessage,
    channel_type: ChannelType,
    library: Library | None,
    *,
    native: bool,
) -> tuple[AnyMessage, Mapping[str, FileInfo]]:
    """``message`` with its library attachments filled in, and their descriptions."""
    wanted = file_ids(message)
    if not wanted:
        return message, {}
    assert isinstance(message, MediaMessage | EmailMessage)
    if library is None:
        raise InvalidJob(f"file_id {wanted[0]!r}: this worker has no file library")
    infos = library.infos(wanted)
    attachments = [
        _fitted(item, infos, channel_type, library, native=native) for item in message.attachments
    ]
    return message.model_copy(update={"attachments": attachments}), infos


def _fitted(
    item: Attachment,
    infos: Mapping[str, FileInfo],
    channel_type: ChannelType,
    library: Library,
    *,
    native: bool,
) -> Attachment:
    if item.file_id is None:
        return item
    info = infos[item.file_id]
    kind = item.kind or kind_of(info.content_type)
    problem = limits.problem(channel_type, kind, info.size)
    if problem is not None:
        raise InvalidContent(f"file {info.id} ({info.name}): {problem}")
    update: dict[str, object] = {"kind": kind, "filename": item.filename or info.name}
    if not native:
        update.update(url=library.url(info.id), file_id=None)
    return item.model_copy(update=update)
