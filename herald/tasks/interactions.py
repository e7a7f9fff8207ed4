"""``herald.record_interaction``: remember an inbound message from a contact."""

from __future__ import annotations

from typing import Any

from celery import Celery

from herald.contract.errors import InvalidJob
from herald.contract.events import utc_stamp
from herald.contract.job import parse_interaction
from herald.contract.names import INTERACTION_TASK
from herald.tasks import context as runtime


def register_record_interaction(app: Celery) -> None:
    """Register the interaction task on ``app``."""

    @app.task(  # type: ignore[untyped-decorator]
        name=INTERACTION_TASK, shared=False, acks_late=True, ignore_result=True
    )
    def record_interaction(*args: Any, **kwargs: Any) -> None:
        """Record that a contact wrote on a channel (drives last_interacted and windows).

        An invalid interaction gets no outcome event: it goes to the dead-letter stream.
        """
        raw = (
            kwargs["interaction"]
            if set(kwargs) == {"interaction"} and not args
            else (
                args[0] if len(args) == 1 and not kwargs else {"args": list(args), "kwargs": kwargs}
            )
        )
        store = runtime.sender().store
        try:
            item = parse_interaction(raw)
        except InvalidJob as exc:
            store.dead_letter(INTERACTION_TASK, raw, exc.message)
            return
        at_ms = int(item.at.timestamp() * 1000)
        store.record_interaction(
            item.contact_id, item.channel_id, item.identifier, at_ms, utc_stamp(item.at)
        )
