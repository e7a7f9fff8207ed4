"""The worker: ``celery -A herald.worker worker`` (or ``herald worker``) runs Herald.

:data:`app` is the Celery app, configured from the ``HERALD_*`` settings when Celery first
reads its configuration; :func:`create_app` makes one with other settings (tests).
"""

from herald.worker.application import app, celery_config, create_app

__all__ = ["app", "celery_config", "create_app"]
