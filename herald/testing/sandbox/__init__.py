"""A local sandbox of Herald's providers, answering as each docs/channels/ page documents.

Used by ``herald demo`` and by the tests: a stdlib HTTP server on 127.0.0.1 (a free port
by default). Each provider is one module of this package that registers a handler with
:func:`herald.sandbox.server.route`; every module here is loaded, so adding a provider is
adding a module. Special recipients reproduce documented errors deterministically, and
:meth:`Sandbox.fail_next` scripts any other answer.
"""

from __future__ import annotations

import importlib
import pkgutil

from herald.testing.sandbox.server import (
    DEFAULT_SECRETS,
    ROUTES,
    Answer,
    Chaos,
    Incoming,
    Recorded,
    Sandbox,
    route,
)

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "server":
        importlib.import_module(f"{__name__}.{_module.name}")

from herald.testing.sandbox.credentials import (  # noqa: E402
    DEFAULT_TELEGRAM_TOKEN,
    DEFAULT_WEBHOOK_SECRET,
)

__all__ = [
    "DEFAULT_SECRETS",
    "DEFAULT_TELEGRAM_TOKEN",
    "DEFAULT_WEBHOOK_SECRET",
    "ROUTES",
    "Answer",
    "Chaos",
    "Incoming",
    "Recorded",
    "Sandbox",
    "route",
]
