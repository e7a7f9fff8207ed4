"""Every Redis key Herald writes besides the public streams (those are in
:mod:`herald.contract.names`)."""

from __future__ import annotations

#: Delivery record of one job (a hash: ``state``, ``attempts``, ``parts`` ...).
JOB_KEY = "herald:job:{job_id}"
#: Every job of a queue that is not finished, by when it next needs a look (a sorted set of
#: job_id scored in ms): a queued job when it has waited a margin, a retry when it is due,
#: a job being sent when its lease ends. The sweeper (herald.core.sweeper) reads it.
DUE_KEY = "herald:due:{queue}"
#: The newest queue time (ms) of any claimed job of the queue: a job queued well before it
#: and still queued was taken off the queue and lost (a queue is consumed in order).
WATERMARK_KEY = "herald:watermark:{queue}"
#: Every in-flight list of the broker (a set of their keys), for the sweeper to look after.
INFLIGHT_SET = "herald:inflight"
#: Messages one consumer has taken off a queue and not yet recorded as unacked (a list).
INFLIGHT_KEY = "herald:inflight:{queue}:{owner}"
#: Held by the one worker that sweeps (SET NX with a TTL, renewed while it sweeps).
SWEEPER_KEY = "herald:sweeper"
#: kombu's hash of delivered, unacked messages (its Redis transport's default name).
KOMBU_UNACKED_KEY = "unacked"
#: Lease held while one worker is talking to the provider for a job.
LEASE_KEY = "herald:lease:{job_id}"
#: The run-time snippet library (a hash of name -> text), edited with ``herald snippets``.
SNIPPETS_KEY = "herald:snippets"
#: A GCRA bucket of the fleet-wide rate limiter (scope: channel id, or channel:recipient).
RATE_KEY = "herald:rate:{scope}"
#: Fleet-wide counters (a hash): ``in_doubt`` resends, ``republished`` jobs (lost ones).
STATS_KEY = "herald:stats"
#: Interactions recorded for a contact: hash of channel_id -> JSON {at_ms, at, identifier}.
INTERACTIONS_KEY = "herald:contact:{contact_id}:interactions"
#: How Herald knows a contact on a channel, learned from the jobs it sends: JSON
#: {contact_id, identifier} under the identifier as providers' webhooks name the contact
#: (herald.core.identities), kept for HERALD_STATE_RETENTION_S.
IDENTITY_KEY = "herald:identity:{channel_id}:{identity}"
#: A message Herald sent, by the provider's id (a hash: ``job_id``, ``rank`` of the newest
#: status emitted, ``pending:<rank>`` statuses that came before the send was recorded),
#: kept for HERALD_EVENTS_RETENTION_S.
MESSAGE_KEY = "herald:message:{channel_id}:{message_id}"
#: Messages sent to one contact on a channel (a sorted set of provider ids by send time in
#: ms), for receipts that mark every earlier message (Messenger's watermarks).
SENT_KEY = "herald:sent:{channel_id}:{identity}"
#: An inbound webhook event already recorded (its provider's dedupe key), kept for
#: HERALD_EVENTS_RETENTION_S.
SEEN_KEY = "herald:seen:{channel_id}:{event_id}"


def job_key(job_id: str) -> str:
    """The delivery record key of ``job_id``."""
    return JOB_KEY.format(job_id=job_id)


def lease_key(job_id: str) -> str:
    """The in-flight lease key of ``job_id``."""
    return LEASE_KEY.format(job_id=job_id)


def interactions_key(contact_id: str) -> str:
    """The interactions hash of ``contact_id``."""
    return INTERACTIONS_KEY.format(contact_id=contact_id)


def due_key(queue: str) -> str:
    """The due set of ``queue``."""
    return DUE_KEY.format(queue=queue)


def watermark_key(queue: str) -> str:
    """The claim watermark of ``queue``."""
    return WATERMARK_KEY.format(queue=queue)


def rate_key(scope: str) -> str:
    """The GCRA bucket of ``scope``."""
    return RATE_KEY.format(scope=scope)


def inflight_key(queue: str, owner: str) -> str:
    """The in-flight list of ``owner`` (one consumer) for ``queue``."""
    return INFLIGHT_KEY.format(queue=queue, owner=owner)


def alive_key(inflight: str) -> str:
    """The heartbeat of the consumer of an in-flight list (gone once it has died)."""
    return f"{inflight}:alive"


def identity_key(channel_id: str, identity: str) -> str:
    """The contact Herald knows as ``identity`` on ``channel_id``."""
    return IDENTITY_KEY.format(channel_id=channel_id, identity=identity)


def message_key(channel_id: str, message_id: str) -> str:
    """The record of the message the provider of ``channel_id`` knows as ``message_id``."""
    return MESSAGE_KEY.format(channel_id=channel_id, message_id=message_id)


def sent_key(channel_id: str, identity: str) -> str:
    """The messages sent to ``identity`` on ``channel_id``, by send time."""
    return SENT_KEY.format(channel_id=channel_id, identity=identity)


def seen_key(channel_id: str, event_id: str) -> str:
    """The dedupe mark of one inbound webhook event of ``channel_id``."""
    return SEEN_KEY.format(channel_id=channel_id, event_id=event_id)


# -- the file library (herald.files): every key under one prefix, FILES_PREFIX --------------

#: The prefix of every key of the file library.
FILES_PREFIX = "herald:files:"
#: One library file's description (a hash: name, size, content_type, sha256, created_at,
#: chunks); immutable once written.
FILE_META_KEY = FILES_PREFIX + "meta:{file_id}"
#: One chunk of a library file's bytes (a string of HERALD_FILES_CHUNK_BYTES at most).
FILE_CHUNK_KEY = FILES_PREFIX + "chunk:{file_id}:{index}"
#: Every library file, by when it was added (a sorted set of file ids scored in ms).
FILES_INDEX_KEY = FILES_PREFIX + "index"
#: Bytes the library holds in all (reserved before a file is written), for the quota.
FILES_USED_KEY = FILES_PREFIX + "used"
#: What a provider knows a library file as (a media id, a file_id, an attachment_id), per
#: provider account (scope: ``whatsapp:<phone_number_id>`` ...), with the id's lifetime.
FILE_PROVIDER_KEY = FILES_PREFIX + "provider:{scope}:{file_id}"
#: Held (SET NX with a TTL) by the one worker uploading a file to a provider account.
FILE_UPLOAD_KEY = FILES_PREFIX + "upload:{scope}:{file_id}"
#: The key signed file URLs are signed with when HERALD_FILES_SIGNING_KEY is unset: made
#: once (SET NX) and shared by the fleet and ``herald webhooks``.
FILES_SIGNING_KEY = FILES_PREFIX + "signing-key"


def file_meta_key(file_id: str) -> str:
    """The description hash of library file ``file_id``."""
    return FILE_META_KEY.format(file_id=file_id)


def file_chunk_key(file_id: str, index: int) -> str:
    """Chunk ``index`` (from 0) of library file ``file_id``."""
    return FILE_CHUNK_KEY.format(file_id=file_id, index=index)


def file_provider_key(scope: str, file_id: str) -> str:
    """The id the provider account ``scope`` knows library file ``file_id`` by."""
    return FILE_PROVIDER_KEY.format(scope=scope, file_id=file_id)


def file_upload_key(scope: str, file_id: str) -> str:
    """The upload lock of library file ``file_id`` on provider account ``scope``."""
    return FILE_UPLOAD_KEY.format(scope=scope, file_id=file_id)
