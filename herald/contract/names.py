"""Names other services rely on: task names, queues, event names and the public streams.

See docs/contract.md#enqueueing-two-celery-tasks and docs/contract.md#outcome-events.
"""

from __future__ import annotations

SEND_TASK = "herald.send_message"
BATCH_TASK = "herald.send_batch"
INTERACTION_TASK = "herald.record_interaction"
DEFAULT_QUEUE = "herald"

EVENT_SENT = "message.sent"
EVENT_FAILED = "message.failed"

#: The outcome stream's default key (``HERALD_EVENTS_STREAM``).
DEFAULT_EVENTS_STREAM = "herald:events"
#: Inbound messages from provider webhooks (``HERALD_INBOUND_STREAM``), docs/webhooks.md.
DEFAULT_INBOUND_STREAM = "herald:inbound"
#: Delivery statuses of sent messages (``HERALD_STATUS_STREAM``), docs/webhooks.md.
DEFAULT_STATUS_STREAM = "herald:statuses"

#: Where providers call ``herald webhooks``, per connected channel.
WEBHOOK_PATH = "/webhooks/{channel_id}"

EVENT_RECEIVED = "message.received"
EVENT_DELIVERED = "message.delivered"
EVENT_READ = "message.read"
EVENT_UNDELIVERED = "message.undelivered"

#: Stream of refused payloads (fields ``task``, ``raw``, ``reason``).
DEAD_STREAM = "herald:dead"
