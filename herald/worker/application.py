"""The Celery app: ``celery -A herald.worker worker`` starts a Herald worker.

Configuration is resolved lazily, when Celery first reads it, so importing this module
starts nothing; the broker comes from ``HERALD_BROKER_URL`` or the embedded Redis. Each
worker process builds its context from the app's settings when it starts
(:mod:`herald.worker.lifecycle`).
"""

from __future__ import annotations

import functools
import logging
import sys
from typing import Any

from celery import Celery
from kombu.entity import Exchange, Queue

from herald.config import Settings
from herald.store.connection import resolve_urls
from herald.tasks import register_tasks
from herald.tasks.base import ContextSlot
from herald.tasks.context import UNACKED_RESTORE_INTERVAL_S
from herald.worker import flags, logs
from herald.worker.lifecycle import Lifecycle

#: kombu's Redis transport with each message checked before Celery reads it.
CHECKED_TRANSPORT = "herald.worker.transport:Transport"


#: What a batch message may carry per job beyond the cap of one job (typical jobs are
#: well under 1 KiB of JSON).
BATCH_JOB_BYTES = 4096


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery settings, each chosen on purpose (see docs/operations.md); ``settings`` with
    the command line's flags already over them (:mod:`herald.worker.flags`)."""
    urls = resolve_urls(settings)
    transport: dict[str, Any] = {
        # Longer than any retry countdown (clamped to half of it), see herald.core.retry.
        "visibility_timeout": settings.visibility_timeout_s,
        # Sweep for messages of dead workers every 10 s (kombu's default is 100 s).
        "unacked_restore_interval": UNACKED_RESTORE_INTERVAL_S,
        "unacked_restore_throttle": 1,
        # Every late ack needs a channel connection: kombu's default of 10 fails acks
        # ("Couldn't ack") past 10 busy slots and the messages are redelivered.
        "max_connections": 2 * settings.worker_concurrency + 10,
        "socket_timeout": 30,
        "socket_connect_timeout": 10,
        "socket_keepalive": True,
        "health_check_interval": 25,
    }
    checked: dict[str, Any] = {}
    if urls.broker.startswith(("amqp://", "amqps://", "pyamqp://")):
        # Publisher confirms: a publish returns once RabbitMQ has the message. The sweeper
        # takes a job RabbitMQ holds out of its due set right after publishing it: without
        # a confirm, a worker killed then lost that message, and the job with it (the chaos
        # run found two of 10,000; docs/delivery.md#the-sweeper).
        transport["confirm_publish"] = True
    if urls.broker.startswith(("redis://", "rediss://")):
        # Every message is checked before Celery reads it (herald.worker.transport). A job
        # up to 4 times the payload cap is still read, so that it ends with its own event;
        # a batch, with up to 4 KiB for each job it may carry on top.
        body = 4 * settings.max_payload_bytes + settings.batch_max * BATCH_JOB_BYTES
        transport |= {
            "herald_state_url": urls.redis,
            "herald_body_bytes": body,
            "herald_envelope_bytes": body * 4 // 3 + 64 * 1024,
            "herald_drop_set": settings.test_drop_set,
            # Single jobs before batches (herald.worker.transport).
            "herald_queue_order": list(settings.consumed),
        }
        checked["broker_transport"] = CHECKED_TRANSPORT
    return {
        "broker_url": urls.broker,
        **checked,
        "broker_transport_options": transport,
        # kombu reads the option from the app's configuration too (docs/operations.md).
        "visibility_timeout": settings.visibility_timeout_s,
        "broker_connection_retry_on_startup": True,  # reconnect rather than die
        "broker_connection_max_retries": None,
        # JSON only: a pickle/YAML/msgpack message is refused unread and logged.
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        # Herald's own record (state + outcome stream) is the result: no result backend.
        "task_ignore_result": True,
        "result_backend": None,
        "task_default_queue": settings.queue,
        # A worker consumes these unless -Q names others (single jobs first).
        "task_queues": [_queue(name) for name in settings.consumed],
        # Ack after the task ran, so a worker that dies mid-send leaves the message to be
        # redelivered; the per-job lease and terminal state make the copy harmless.
        "task_acks_late": True,
        # Without this a killed pool child's message is acked and lost (celery#1628).
        "task_reject_on_worker_lost": True,
        # Hold only what runs: prefetched-but-unacked messages wait out the visibility
        # timeout after a crash.
        "worker_prefetch_multiplier": settings.worker_prefetch,
        # On connection loss the running send finishes; its redelivered copy finds the
        # lease or the terminal state. Set explicitly: the default changes in Celery 6.
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        # Cold shutdown (SIGQUIT) waits this long, then puts unacked messages back; a warm
        # one (SIGTERM) lets in-flight sends finish (docs/operations.md).
        "worker_soft_shutdown_timeout": 60.0,
        "worker_enable_soft_shutdown_on_idle": True,
        # Task events on, so Flower sees every task.
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        **_pool(settings.worker_pool),
        "worker_concurrency": settings.worker_concurrency,
        "worker_hijack_root_logger": False,
        "enable_utc": True,
    }


def _pool(pool: str) -> dict[str, str]:
    """The pool setting; none for a green pool that ``-P`` gave (Celery patched the process
    for it before loading the app, and warns when the setting names one too)."""
    return {} if _green_patched() else {"worker_pool": pool}


def _green_patched() -> bool:
    """Whether gevent or eventlet has patched this process's sockets."""
    gevent, eventlet = sys.modules.get("gevent.monkey"), sys.modules.get("eventlet.patcher")
    return bool(
        (gevent is not None and gevent.is_module_patched("socket"))
        or (eventlet is not None and eventlet.is_monkey_patched("socket"))
    )


def _queue(name: str) -> Queue:
    """A queue as Celery declares its default one: a direct exchange of the same name."""
    return Queue(name, Exchange(name), routing_key=name)  # type: ignore[no-untyped-call]


def create_app(settings: Settings | None = None) -> Celery:
    """A Celery app with Herald's tasks; its settings (``settings``, else the ``HERALD_*``
    environment) are read on first use, by Celery's configuration and by the worker
    context that each worker process builds from them."""
    quiet_http_logs()
    logs.install()  # a control character in a logged value cannot forge a log line
    # Flags given on the command line win over the settings (docs/operations.md#worker-flags).
    settings_of = functools.cache(lambda: flags.given(sys.argv).over(settings or Settings()))
    app = Celery("herald", set_as_current=False)
    app.add_defaults(lambda: celery_config(settings_of()))
    slot = ContextSlot()
    register_tasks(app, slot)
    Lifecycle(app, settings_of, slot).connect()
    return app


def quiet_http_logs() -> None:
    """httpx logs every request URL at INFO, and Telegram puts the bot token in the URL:
    keep httpx and httpcore at WARNING so no token reaches a log."""
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


app = create_app()
