"""Herald's Celery tasks. Their names are the public API; their bodies stay thin."""

from __future__ import annotations

from celery import Celery

from herald.tasks.interactions import register_record_interaction
from herald.tasks.send import register_send_message


def register_tasks(app: Celery) -> None:
    """Register ``herald.send_message`` and ``herald.record_interaction`` on ``app``."""
    register_send_message(app)
    register_record_interaction(app)


__all__ = ["register_tasks"]
