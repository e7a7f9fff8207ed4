"""The worker flags given on the command line, which win over Herald's settings.

Celery cannot tell ``-P prefork`` from no ``-P`` at all (``prefork`` is the flag's default,
and a configured ``worker_pool`` then replaces it), so the app reads the flags itself from
the command line that started the process and gives Celery settings that agree with them
(docs/operations.md#worker-flags). ``herald worker`` starts its workers with a command
line of Celery's, so the same reading serves both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from herald.config import Settings

#: Each flag's spellings: the short one (``-Pthreads`` and ``-P threads``) and the long one
#: (``--pool=threads`` and ``--pool threads``).
SPELLINGS = {
    "pool": ("-P", "--pool"),
    "concurrency": ("-c", "--concurrency"),
    "queues": ("-Q", "--queues"),
    "prefetch": (None, "--prefetch-multiplier"),
}


@dataclass(frozen=True)
class Flags:
    """What the command line said of the pool, its size, the queues and the prefetch."""

    pool: str | None = None
    concurrency: int | None = None
    queues: tuple[str, ...] | None = None
    prefetch: int | None = None

    def over(self, settings: Settings) -> Settings:
        """``settings`` with every flag given in place of the setting it overrides."""
        update: dict[str, object] = {}
        if self.pool is not None:
            update["worker_pool"] = self.pool
        if self.concurrency is not None:
            update["worker_concurrency"] = self.concurrency
        if self.queues is not None:
            update["worker_queues"] = self.queues
        if self.prefetch is not None:
            update["worker_prefetch"] = self.prefetch
        return settings.model_copy(update=update) if update else settings


def given(argv: Sequence[str]) -> Flags:
    """The flags of a ``celery ... worker`` or ``herald worker`` command line (none for
    any other command, such as a test runner's that loads the app)."""
    program = argv[0] if argv else ""
    if "worker" not in argv[1:] or not any(name in program for name in ("celery", "herald")):
        return Flags()
    args = list(argv[list(argv).index("worker") + 1 :])
    found = {name: _value(args, *spelled) for name, spelled in SPELLINGS.items()}
    queues = found["queues"]
    return Flags(
        pool=found["pool"],
        concurrency=_number(found["concurrency"]),
        queues=tuple(q for q in queues.split(",") if q) if queues else None,
        prefetch=_number(found["prefetch"]),
    )


def _value(args: list[str], short: str | None, long: str) -> str | None:
    """The last value given to the flag (as Celery takes the last one), else None."""
    value = None
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg in (short, long):
            value = args[i + 1] if i + 1 < len(args) else None
        elif arg.startswith(long + "="):
            value = arg[len(long) + 1 :]
        elif short and arg.startswith(short) and not arg.startswith("--") and len(arg) > 2:
            value = arg[2:].removeprefix("=")
    return value


def _number(value: str | None) -> int | None:
    """A positive whole number, or None (``auto`` and the like are Celery's to read)."""
    return int(value) if value is not None and value.isdigit() and int(value) > 0 else None
