"""The benchmark's child processes: each in a session of its own, killed with its whole tree.

Every process the benchmark starts is registered in a :class:`Processes`; closing it (on a
normal exit, an error or Ctrl-C) SIGKILLs each one's process group and every descendant
still alive, so nothing is left behind. A :class:`Usage` samples a process tree while a
drain runs: CPU seconds (user + system) and the peak resident memory of each process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil


class Child:
    """One started process, its output in ``log``."""

    def __init__(self, name: str, argv: Sequence[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        with log.open("ab") as out:
            self.popen = subprocess.Popen(
                list(argv),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: Ctrl-C reaches us, we kill it
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, size: int = 3000) -> str:
        """The end of its output, for error messages."""
        try:
            return self.log.read_bytes()[-size:].decode(errors="replace")
        except OSError:
            return ""

    def wait_for_line(self, needle: str, timeout: float) -> str:
        """Wait until its output holds ``needle``; return that line (raise if it exits)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log.read_bytes().decode(errors="replace")
            for line in text.splitlines():
                if needle in line:
                    return line
            if not self.alive():
                raise RuntimeError(f"{self.name} exited ({self.popen.returncode}):\n{self.tail()}")
            time.sleep(0.02)
        raise RuntimeError(f"{self.name}: no {needle!r} within {timeout:.0f} s:\n{self.tail()}")

    def tree(self) -> list[psutil.Process]:
        """The process and its descendants that are alive now."""
        try:
            root = psutil.Process(self.pid)
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

    def kill(self) -> None:
        """SIGKILL the process, its group and every descendant; reap it."""
        procs = self.tree()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=10)
        psutil.wait_procs(procs, timeout=5)


class Processes:
    """Every process the benchmark started; :meth:`close` kills those still running."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._children: list[Child] = []
        self._closers: list[Callable[[], None]] = []

    def start(self, name: str, argv: Sequence[str], env: dict[str, str]) -> Child:
        slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in name)
        child = Child(name, argv, env, self.folder / f"{slug}.log")
        self._children.append(child)
        return child

    def on_close(self, closer: Callable[[], None]) -> None:
        """Call ``closer`` on close (for processes started by other code)."""
        self._closers.append(closer)

    def stop(self, child: Child) -> None:
        child.kill()
        if child in self._children:
            self._children.remove(child)

    def close(self) -> None:
        while self._children:
            self._children.pop().kill()
        while self._closers:
            with contextlib.suppress(Exception):
                self._closers.pop()()


def _cpu(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def _hwm_bytes(pid: int) -> int:
    """The kernel's peak RSS of ``pid`` (Linux ``VmHWM``), 0 where unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


@dataclass
class Usage:
    """CPU and peak memory of a process tree between :meth:`begin` and :meth:`end`."""

    child: Child
    interval_s: float = 0.2
    _start_cpu: dict[int, float] = field(default_factory=dict)
    _last_cpu: dict[int, float] = field(default_factory=dict)
    _peak: dict[int, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def begin(self) -> None:
        self._start_cpu = self._sample()
        self._thread = threading.Thread(target=self._run, daemon=True, name="bench-usage")
        self._thread.start()

    def end(self) -> tuple[float, int, int]:
        """CPU seconds used since :meth:`begin`, peak RSS of the largest process (bytes),
        and how many processes the tree had."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        cpu = sum(last - self._start_cpu.get(pid, 0.0) for pid, last in self._last_cpu.items())
        return max(cpu, 0.0), max(self._peak.values(), default=0), len(self._last_cpu)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def _sample(self) -> dict[int, float]:
        now: dict[int, float] = {}
        for proc in self.child.tree():
            try:
                now[proc.pid] = _cpu(proc)
                rss = max(int(proc.memory_info().rss), _hwm_bytes(proc.pid))
            except psutil.Error:
                continue
            self._peak[proc.pid] = max(self._peak.get(proc.pid, 0), rss)
        self._last_cpu.update(now)
        return now
