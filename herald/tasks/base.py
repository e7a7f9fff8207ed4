"""The base class of Herald's tasks, through which a task body reaches its worker context."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from celery import Task

from herald.contract.errors import ConfigError, InvalidJob
from herald.tasks.context import WorkerContext


class ContextSlot:
    """Where one app's tasks find the context of the process they run in.

    The worker sets it when a worker process starts (and again in every forked pool child);
    a context is used only in the process that built it.
    """

    def __init__(self) -> None:
        self._context: WorkerContext | None = None
        self._pid = 0

    def fill(self, context: WorkerContext) -> None:
        """Hold ``context`` as this process's."""
        self._context, self._pid = context, os.getpid()

    def empty(self) -> WorkerContext | None:
        """Let go of the context (returned, for closing); None if there was none."""
        context, self._context = self._context, None
        return context

    def held_here(self) -> bool:
        """Whether this process built the context held."""
        return self._context is not None and self._pid == os.getpid()

    def get(self) -> WorkerContext:
        """This process's context."""
        if self._context is None or not self.held_here():
            raise ConfigError("no worker context in this process: tasks run in a Herald worker")
        return self._context


class HeraldTask(Task):  # type: ignore[misc]
    """A Herald task: Celery's Task, with the worker process's context."""

    #: Set per app when the tasks are registered (``app.task(base=..., slot=...)``).
    slot: ClassVar[ContextSlot]

    @property
    def context(self) -> WorkerContext:
        """The context of the worker process running this task."""
        return self.slot.get()


def call_argument(task: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The task's one argument ``name``, passed by keyword or as the only positional one;
    :class:`InvalidJob` for a call of any other shape."""
    if not args and set(kwargs) == {name}:
        return kwargs[name]
    if len(args) == 1 and not kwargs:
        return args[0]
    given = [f"{len(args)} positional"] if args else []
    given += [f"keyword {key!r}" for key in sorted(kwargs)[:5]]
    raise InvalidJob(f"{task} takes one argument, {name}; it was called with {', '.join(given)}")


def call_as_given(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """A task call as data, for an outcome or a dead-letter entry."""
    return {"args": list(args), "kwargs": kwargs}
