"""A worker's life: its context built when each worker process starts, the sweeper run by
the worker's main process, both ended at shutdown.

Celery's signals are process-wide, so every handler acts only for its own app:
``worker_init`` (the main process, before any task; the threads, gevent and solo pools run
tasks there), ``worker_process_init`` (each prefork child, which must not use the parent's
connections) and ``worker_shutdown``.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from typing import Any

from celery import Celery, current_app
from celery.signals import worker_init, worker_process_init, worker_shutdown

from herald.config import Settings
from herald.contract.errors import ConfigError
from herald.core.observe import Observer
from herald.tasks.base import ContextSlot
from herald.tasks.context import WorkerContext

log = logging.getLogger("herald.worker")


class Lifecycle:
    """Builds and ends the worker contexts of one app."""

    def __init__(self, app: Celery, settings: Callable[[], Settings], slot: ContextSlot) -> None:
        self.app = app
        self.settings = settings
        self.slot = slot

    def connect(self) -> None:
        """Hang the handlers on Celery's signals."""
        worker_init.connect(self._on_worker_init, weak=False)
        worker_process_init.connect(self._on_process_init, weak=False)
        worker_shutdown.connect(self._on_shutdown, weak=False)

    def _build(self) -> None:
        settings = self.settings()
        try:
            context = WorkerContext.build(settings, self.app, observer=self._observer(settings))
        except ConfigError as exc:
            # Refuse to start on unusable settings or channels, with a clear message.
            log.critical("herald: %s (%s)", exc, settings.channels_file)
            raise SystemExit(1) from exc  # the line above says why
        except Exception as exc:
            # A worker without its context would take jobs it cannot run: refuse to start.
            log.critical("herald: the worker context could not be built", exc_info=True)
            raise SystemExit(1) from exc
        self.slot.fill(context)

    def _on_worker_init(self, sender: Any = None, **_: Any) -> None:
        if sender is None or sender.app is not self.app:
            return
        settings = self.settings()
        if not settings.channels_file.exists():
            if "channels_file" in settings.model_fields_set:
                # Named on purpose and missing: a typo, not a fleet without channels.
                log.critical(
                    "herald: HERALD_CHANNELS_FILE names %s, which does not exist",
                    settings.channels_file,
                )
                raise SystemExit(1)
            log.warning(
                "herald: no channels file at %s (HERALD_CHANNELS_FILE): every job will fail"
                " with no_channel or unknown_channel",
                settings.channels_file,
            )
        if settings.metrics_port is not None and "prefork" in str(sender.pool_cls).lower():
            # Each pool child counts in files here; the main process serves their sum. Set
            # before prometheus_client is first imported (it chooses its storage then).
            os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="herald-"))
            # prometheus_client may be imported already (Flower's Celery command plugin
            # imports it when the celery command starts): choose its storage again, before
            # Herald's metrics are made.
            from prometheus_client import values

            values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
        self._build()
        context = self.slot.get()
        # The main process runs the sweeper (docs/delivery.md#the-sweeper), whatever the pool.
        context.sweeper.start()
        if settings.metrics_port is not None:
            from herald.worker.metrics import serve

            serve(
                settings.metrics_port,
                settings.metrics_bind,
                broker=context.sweeper.broker,
                queues=list(settings.consumed),
            )
            log.info("herald: metrics on %s:%d", settings.metrics_bind, settings.metrics_port)

    @staticmethod
    def _observer(settings: Settings) -> Observer:
        """Prometheus metrics when ``HERALD_METRICS_PORT`` is set, else nothing."""
        if settings.metrics_port is None:
            return Observer()
        from herald.worker.metrics import PrometheusObserver

        return PrometheusObserver()

    def _on_process_init(self, **_: Any) -> None:
        # A prefork child: forked with the parent's context (its sockets are the parent's),
        # or started afresh with none. The solo pool sends this in the main process too.
        if current_app._get_current_object() is not self.app or self.slot.held_here():
            return
        self.slot.empty()  # the parent's: not closed here, the parent still uses it
        self._build()

    def _on_shutdown(self, sender: Any = None, **_: Any) -> None:
        if sender is None or sender.app is not self.app:
            return
        context = self.slot.empty()
        if context is not None:
            context.close()
