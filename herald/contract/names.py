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
#: Stream of refused payloads (fields ``task``, ``raw``, ``reason``).
DEAD_STREAM = "herald:dead"
