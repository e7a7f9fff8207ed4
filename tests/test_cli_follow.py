"""``herald events --follow`` stays up: through 30 s of silence (longer than any socket
timeout) and through a Redis restart, printing each new event once.

One test, about 40 s: the silence is the behaviour under test.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import pytest
import redis

from herald.testing.processes import RedisServer
from tests.test_consumers import event_fields

ROOT = Path(__file__).resolve().parents[1]
#: Longer than redis-py's default socket timeout (5 s) and the read's block, several times.
SILENCE_S = 31


class Lines:
    """The lines a stream of a child process writes, read by a thread as they come."""

    def __init__(self, pipe: IO[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(pipe,), daemon=True)
        self._thread.start()

    def _pump(self, pipe: IO[str]) -> None:
        for line in pipe:
            self._queue.put(line.rstrip("\n"))

    def drain(self) -> list[str]:
        """Every line, once the process has exited (its pipe is at its end)."""
        self._thread.join(timeout=5)
        while not self._queue.empty():
            self.seen.append(self._queue.get())
        return self.seen

    def wait_for(self, needle: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            self.seen.append(line)
            if needle in line:
                return line
        raise AssertionError(f"no line with {needle!r} in {timeout}s; saw {self.seen}")


@pytest.mark.timeout(150)
def test_follow_survives_silence_and_a_redis_restart(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis").start()
    stream = "herald:events:follow"
    env = {
        **os.environ,
        "HERALD_BROKER_URL": server.url,
        "HERALD_REDIS_URL": server.url,
        "HERALD_EVENTS_STREAM": stream,
        "HERALD_DATA_DIR": str(tmp_path / "data"),
    }
    follower = subprocess.Popen(
        [sys.executable, "-m", "herald.cli", "events", "--follow", "--json"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    client = redis.Redis.from_url(server.url, decode_responses=True)
    try:
        assert follower.stdout is not None and follower.stderr is not None
        out, err = Lines(follower.stdout), Lines(follower.stderr)
        err.wait_for(f"following {stream}", timeout=30)

        # Given 30 s in which nothing is written
        time.sleep(SILENCE_S)
        assert follower.poll() is None, err.seen

        # Then an event written now is printed at once
        client.xadd(stream, event_fields("after-silence"))
        assert '"job_id": "after-silence"' in out.wait_for("after-silence", timeout=10)

        # When Redis restarts (AOF on: the stream survives)
        server.restart(down_s=1.0)
        err.wait_for("reconnect", timeout=20)
        client.xadd(stream, event_fields("after-restart"))

        # Then the follower is back and prints the new event, and only it
        out.wait_for("after-restart", timeout=30)
        assert follower.poll() is None
        assert sum("after-silence" in line for line in out.seen) == 1
    finally:
        follower.send_signal(signal.SIGINT)
        try:
            code = follower.wait(timeout=15)
        except subprocess.TimeoutExpired:
            follower.kill()
            raise
        client.close()
        server.stop()
    stderr = "\n".join(err.drain())
    assert code == 130 and "Traceback" not in stderr, stderr
    assert any("lost Redis at" in line and "HERALD_REDIS_URL" in line for line in err.seen)
