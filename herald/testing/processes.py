"""Real processes for fault tests: a restartable Redis server and worker subprocesses.

Used by tests/test_faults.py and scripts/chaos.py. A thread worker cannot be SIGKILLed,
so these run ``herald worker`` as a child process.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis

from herald.store.embedded import redis_binary


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """A redis-server with AOF on, in its own folder, that can be stopped and restarted."""

    def __init__(self, folder: Path, *, fsync: str = "everysec") -> None:
        self.folder = folder
        #: ``appendfsync``: ``always`` loses no acknowledged write even to a SIGKILL.
        self.fsync = fsync
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                redis_binary(),
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.folder),
                "--appendonly",
                "yes",
                "--appendfsync",
                self.fsync,
                "--save",
                "",
                "--maxmemory-policy",
                "noeviction",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while not self.ping():
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        return self

    def ping(self) -> bool:
        client = redis.Redis.from_url(self.url, socket_timeout=1, socket_connect_timeout=1)
        try:
            return bool(client.ping())
        except (redis.RedisError, OSError):
            return False
        finally:
            client.close()

    def stop(self) -> None:
        """A clean shutdown: the AOF is flushed, as on a service restart."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)
        self.process = None

    def restart(self, down_s: float = 0.0, *, kill: bool = False) -> None:
        """Stop (cleanly, or with SIGKILL: up to a second of writes not yet in the AOF is
        lost, as ``appendfsync everysec`` allows) and start again on the same port."""
        if kill and self.process is not None:
            self.process.kill()
            self.process.wait(timeout=30)
            self.process = None
        else:
            self.stop()
        time.sleep(down_s)
        self.start()


class WorkerProcess:
    """A Herald worker in a child process (``celery -A herald.worker worker``, as
    ``herald worker`` runs it, with a node name of its own), its log in a file."""

    def __init__(
        self,
        env: dict[str, str],
        log: Path,
        *,
        concurrency: int = 4,
        pool: str | None = None,
        queues: Sequence[str] | None = None,
    ) -> None:
        self.env = env
        self.log = log
        self.concurrency = concurrency
        #: The -P flag (None: none given, the settings' pool) and the -Q queues (None:
        #: HERALD_QUEUE alone).
        self.pool = pool
        self.queues = queues
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, wait_ready: bool = True) -> WorkerProcess:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "herald.worker",
                    "worker",
                    "-E",
                    "-Q",
                    ",".join(self.queues or [self.env.get("HERALD_QUEUE", "herald")]),
                    # --pool=: the spelling Celery's early gevent patching recognises, as "-P x".
                    *([f"--pool={self.pool}"] if self.pool else []),
                    # Workers on one host need names of their own (RabbitMQ's pidbox queue
                    # of a node name is exclusive).
                    "-n",
                    f"herald-{uuid.uuid4().hex[:8]}@%h",
                    "--loglevel=INFO",
                    f"--concurrency={self.concurrency}",
                ],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=os.getcwd(),
            )
        if wait_ready:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        start = self.log.stat().st_size if self.log.exists() else 0
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log.read_text()[-2000:]}")
            text = self.log.read_bytes()[start:].decode(errors="replace")
            if " ready." in text:
                return
            time.sleep(0.1)
        raise RuntimeError(f"worker not ready: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL: the worker dies mid-whatever, with no chance to clean up."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()

    def terminate(self, timeout: float = 90.0) -> int:
        """SIGTERM (warm shutdown) and wait; returns the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


def protocol_v2(task: str, kwargs: dict[str, Any], queue: str) -> dict[str, Any]:
    """A Celery protocol-2 message in kombu's Redis envelope, built by hand
    (docs/contract.md#enqueueing-by-hand-any-language)."""
    task_id = str(uuid.uuid4())
    body = [[], kwargs, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]
    return {
        "body": base64.b64encode(json.dumps(body).encode()).decode(),
        "content-type": "application/json",
        "content-encoding": "utf-8",
        "headers": {
            "lang": "py",
            "task": task,
            "id": task_id,
            "root_id": task_id,
            "parent_id": None,
            "group": None,
        },
        "properties": {
            "correlation_id": task_id,
            "reply_to": "",
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
        },
    }
