"""How large a library file each channel type takes, per attachment kind.

Checked twice: when a file is added (``herald files add`` warns of every channel type the
file is too large for) and when a job sends it (``invalid_content`` before any provider
call). The numbers are the providers' documented caps for uploads, or for URLs where the
provider fetches the file (docs/channels/*.md); ``None`` is no cap of the channel's own.
Megabytes are 1,000,000 bytes: below the limit whichever way a provider counts.
"""

from __future__ import annotations

from collections.abc import Mapping

from herald.config import ChannelType
from herald.files.detect import Kind

MB = 1_000_000
#: What an email carries per attachment (herald.adapters.email.attachments: 10 MiB).
EMAIL_ATTACHMENT_BYTES = 10 * 1024 * 1024

#: Channel type -> attachment kind -> the largest file, in bytes (None: no cap).
CAPS: Mapping[ChannelType, Mapping[Kind, int | None]] = {
    # Media upload: image 5 MB, video and audio 16 MB, document 100 MB.
    ChannelType.WHATSAPP: {"image": 5 * MB, "video": 16 * MB, "audio": 16 * MB, "file": 100 * MB},
    # Attachment Upload API: 25 MB; images 8 MB.
    ChannelType.MESSENGER: {"image": 8 * MB, "video": 25 * MB, "audio": 25 * MB, "file": 25 * MB},
    ChannelType.INSTAGRAM: {"image": 8 * MB, "video": 25 * MB, "audio": 25 * MB, "file": 25 * MB},
    # Multipart uploads: photos 10 MB, other files 50 MB.
    ChannelType.TELEGRAM: {"image": 10 * MB, "video": 50 * MB, "audio": 50 * MB, "file": 50 * MB},
    # MMS: 5 MB per message.
    ChannelType.TWILIO_SMS: {"image": 5 * MB, "video": 5 * MB, "audio": 5 * MB, "file": 5 * MB},
    ChannelType.EMAIL_SMTP: dict.fromkeys(
        ("image", "video", "audio", "file"), EMAIL_ATTACHMENT_BYTES
    ),
    ChannelType.SENDGRID: dict.fromkeys(
        ("image", "video", "audio", "file"), EMAIL_ATTACHMENT_BYTES
    ),
    # Images only (10 MB); LINE sends no other kind of attachment.
    ChannelType.LINE: {"image": 10 * MB},
    # Pictures 1 MB, video 26 MB, files 50 MB (audio goes as a file).
    ChannelType.VIBER: {"image": 1 * MB, "video": 26 * MB, "audio": 50 * MB, "file": 50 * MB},
    ChannelType.CUSTOM: dict.fromkeys(("image", "video", "audio", "file"), None),
}


def cap(channel_type: ChannelType, kind: Kind) -> int | None:
    """The largest ``kind`` attachment ``channel_type`` takes; 0 when it takes none."""
    caps = CAPS.get(channel_type, {})
    return caps.get(kind, 0)


def problem(channel_type: ChannelType, kind: Kind, size: int) -> str | None:
    """Why a ``size``-byte ``kind`` file cannot go out on ``channel_type``, or None."""
    most = cap(channel_type, kind)
    if most is None or size <= most:
        return None
    if most == 0:
        return f"{channel_type} sends no {kind} attachments"
    return f"{channel_type} takes {kind} attachments up to {most} bytes; this one is {size}"


def warnings(kind: Kind, size: int) -> list[str]:
    """Every channel type a ``size``-byte ``kind`` file is too large for, one line each."""
    return [found for t in CAPS if (found := problem(t, kind, size)) is not None]
