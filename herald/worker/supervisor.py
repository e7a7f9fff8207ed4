"""``herald worker``: one Celery worker process per core, each with an I/O-concurrent pool,
supervised so that a child that dies is replaced.

A send spends its time waiting on the provider, so each process runs many sends at once
(the threads pool by default); a process's Python code runs on one core at a time, so a
host runs one such process per core (docs/performance.md#every-core). The prefork pool
is already one process per slot: with it, one process is started. Each child is a plain
``celery -A herald.worker worker`` with the flags given, so a flag wins there as anywhere
(:mod:`herald.worker.flags`), and the gevent pool patches the child before it imports
anything.

Signals: SIGTERM and SIGINT are passed on as SIGTERM (a warm shutdown: sends in flight
finish), SIGQUIT as SIGQUIT; the supervisor exits once every child has. A child that
exits while the fleet is not stopping is started again, after a pause that doubles while
children keep dying young; a child that exits with an error code young, before any child
has run long, refused its configuration: the supervisor stops with that code.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType

log = logging.getLogger("herald.worker")

#: A child that lived shorter than this died young.
YOUNG_S = 10.0
#: The first pause before a dead child is started again, and the longest.
RESTART_PAUSE_S = 1.0
RESTART_PAUSE_MAX_S = 30.0


def host_cores() -> int:
    """The cores this process may run on (its CPU affinity, else the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Plan:
    """What ``herald worker`` runs: how many processes, with which Celery flags each."""

    processes: int
    pool: str
    concurrency: int
    #: Further flags for every child (the user's own Celery flags).
    extra: tuple[str, ...] = ()
    loglevel: str = "INFO"
    #: Each child's metrics port is this one plus its index (None: no metrics).
    metrics_port: int | None = None

    def argv(self, index: int) -> list[str]:
        """The command line of child ``index``."""
        return [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "herald.worker",
            "worker",
            "-E",
            # The first is celery@<host>, as a lone worker is (health checks ping it).
            f"--hostname=celery{index or ''}@%h",
            f"--loglevel={self.loglevel}",
            f"--pool={self.pool}",
            f"--concurrency={self.concurrency}",
            *self.extra,
        ]

    def env(self, index: int, base: Mapping[str, str]) -> dict[str, str]:
        """The environment of child ``index``: its own metrics port."""
        env = dict(base)
        if self.metrics_port is not None:
            env["HERALD_METRICS_PORT"] = str(self.metrics_port + index)
        return env

    def banner(self, cores: int, queues: Sequence[str]) -> str:
        """One line saying what was chosen, and why."""
        metrics = ""
        if self.metrics_port is not None:
            last = self.metrics_port + self.processes - 1
            ports = (
                str(self.metrics_port)
                if last == self.metrics_port
                else f"{self.metrics_port}-{last}"
            )
            metrics = f"; metrics on port {ports}"
        return (
            f"herald worker: {self.processes} process(es) on {cores} core(s), each"
            f" {self.pool} pool x {self.concurrency}; queues {', '.join(queues)}{metrics}"
        )


@dataclass
class _Child:
    index: int
    process: subprocess.Popen[bytes]
    started: float = field(default_factory=time.monotonic)


class Supervisor:
    """Runs a :class:`Plan`'s children until told to stop; replaces those that die."""

    def __init__(self, plan: Plan, env: Mapping[str, str]) -> None:
        self.plan = plan
        self.env = env
        self.children: dict[int, _Child] = {}
        self.stopping: int | None = None  # the signal passed on, once stopping
        self.pause = RESTART_PAUSE_S
        self.ran_long = False

    def run(self) -> int:
        """Start the children and supervise them; the exit code of the fleet."""
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            signal.signal(sig, self._on_signal)
        for index in range(self.plan.processes):
            self._start(index)
        code = 0
        while self.children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            except InterruptedError:  # pragma: no cover - PEP 475 retries os.wait
                continue
            child = next((c for c in self.children.values() if c.process.pid == pid), None)
            if child is None:
                continue
            del self.children[child.index]
            child.process.returncode = os.waitstatus_to_exitcode(status)
            code = self._after_exit(child) or code
        return code

    def _start(self, index: int) -> None:
        # A group of its own: a Ctrl-C reaches the supervisor, which passes on one SIGTERM.
        process = subprocess.Popen(
            self.plan.argv(index), env=self.plan.env(index, self.env), process_group=0
        )
        self.children[index] = _Child(index, process)

    def _after_exit(self, child: _Child) -> int:
        """Decide what a child's exit means; a non-zero code when the fleet must stop."""
        code = child.process.returncode or 0
        lived = time.monotonic() - child.started
        if self.stopping is not None:
            return 0 if code in (0, -self.stopping) else code
        young = lived < YOUNG_S
        if not young:
            self.ran_long, self.pause = True, RESTART_PAUSE_S
        if young and not self.ran_long and code > 0:  # it refused to start; a signal is not that
            log.critical(
                "herald worker: process %d exited with %d at start; stopping the others",
                child.index,
                code,
            )
            self._pass_on(signal.SIGTERM)
            return code
        log.error(
            "herald worker: process %d exited with %d after %.0f s; starting it again in %.0f s",
            child.index,
            code,
            lived,
            self.pause,
        )
        time.sleep(self.pause)
        if self.stopping is None:
            self._start(child.index)
        if young:
            self.pause = min(self.pause * 2, RESTART_PAUSE_MAX_S)
        return 0

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._pass_on(signal.SIGQUIT if signum == signal.SIGQUIT else signal.SIGTERM)

    def _pass_on(self, sig: int) -> None:
        self.stopping = sig
        for child in self.children.values():
            if child.process.poll() is None:
                child.process.send_signal(sig)
