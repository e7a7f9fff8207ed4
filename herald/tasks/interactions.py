"""``herald.record_interaction``: remember an inbound message from a contact."""

from __future__ import annotations

from typing import Any

from celery import Celery

from herald.contract.errors import InvalidJob
from herald.contract.events import utc_stamp
from herald.contract.job import parse_interaction
from herald.contract.names import INTERACTION_TASK
from herald.tasks.base import ContextSlot, HeraldTask, call_argument, call_as_given


def register_record_interaction(app: Celery, slot: ContextSlot) -> None:
    """Register the interaction task on ``app``."""

    @app.task(  # type: ignore[untyped-decorator]
        name=INTERACTION_TASK,
        base=HeraldTask,
        slot=slot,
        shared=False,
        bind=True,
        acks_late=True,
        ignore_result=True,
    )
    def record_interaction(self: HeraldTask, *args: Any, **kwargs: Any) -> None:
        """Record that a contact wrote on a channel (drives last_interacted and windows).

        An invalid interaction gets no outcome event: it goes to the dead-letter stream.
        """
        store = self.context.store
        raw: Any = call_as_given(args, kwargs)
        try:
            raw = call_argument(INTERACTION_TASK, "interaction", args, kwargs)
            item = parse_interaction(raw)
        except InvalidJob as exc:
            store.dead_letter(INTERACTION_TASK, raw, exc.message)
            return
        at_ms = int(item.at.timestamp() * 1000)
        store.record_interaction(
            item.contact_id, item.channel_id, item.identifier, at_ms, utc_stamp(item.at)
        )
