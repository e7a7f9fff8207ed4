"""Herald: the "Send a Message" step of chat-workflow automation, as a Celery worker fleet.

Producers need none of this package (they send ``herald.send_message`` by name); what is
exported here is for Python producers, consumers of the outcome stream, and tests.
"""

from herald.contract.errors import HeraldError, SendError
from herald.contract.events import OutcomeEvent
from herald.contract.job import Interaction, SendJob, parse_job
from herald.contract.names import BATCH_TASK, INTERACTION_TASK, SEND_TASK
from herald.producer import (
    Producer,
    enqueue,
    enqueue_many,
    record_interaction,
    wait_for_outcome,
)

__all__ = [
    "BATCH_TASK",
    "INTERACTION_TASK",
    "SEND_TASK",
    "HeraldError",
    "Interaction",
    "OutcomeEvent",
    "Producer",
    "SendError",
    "SendJob",
    "enqueue",
    "enqueue_many",
    "parse_job",
    "record_interaction",
    "wait_for_outcome",
]
