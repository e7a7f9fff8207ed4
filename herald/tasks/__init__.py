"""Herald's Celery tasks. Their names are the public API; their bodies stay thin: parse
the call, hand it to the send core through the worker context, turn the result into an
ack, a re-queue or a dead-letter entry."""

from __future__ import annotations

from celery import Celery

from herald.tasks.base import ContextSlot
from herald.tasks.batch import register_send_batch
from herald.tasks.interactions import register_record_interaction
from herald.tasks.send import register_send_message


def register_tasks(app: Celery, slot: ContextSlot) -> None:
    """Register ``herald.send_message``, ``herald.send_batch`` and
    ``herald.record_interaction`` on ``app``; their bodies reach the worker context through
    ``slot``."""
    register_send_message(app, slot)
    register_send_batch(app, slot)
    register_record_interaction(app, slot)


__all__ = ["register_tasks"]
