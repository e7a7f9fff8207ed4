"""Chaos run: N jobs through real worker processes while things break, then the figures.

    python scripts/chaos.py --jobs 10000 --workers 2

What breaks: the provider (a local Telegram sandbox) answers with 5xx before and after
processing, 429 with a Retry-After longer than the in-call limit (so the job waits for its
retry in its record, and the sweeper publishes it), connection resets before and after
processing, and hangs past the client's read timeout; worker processes are SIGKILLed at
random moments (and replaced); Redis is restarted once, cleanly or with SIGKILL
(``--redis-kill``; AOF on). On a Redis broker, half the jobs are enqueued as raw Celery
protocol-2 messages with their record written first (LPUSH, as a service in another
language would) and half as plain messages with no record (as a plain ``send_task``);
with ``--broker rabbitmq`` (RabbitMQ at 127.0.0.1:5672, Redis for state), half through
Herald's producer and half by a plain ``send_task``. Each job goes to its own chat, so
every provider-side send can be attributed to its job.

Printed: jobs enqueued, outcome events, lost jobs (no event), duplicate events (more than
one event for a job), duplicate provider sends (a chat that received the message more than
once) and the in-doubt count (resends Herald made after it could not know whether the
provider had processed a request). Targets: 0 lost, 0 duplicate events, duplicate sends
no more than in-doubt.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from herald.store.keys import STATS_KEY  # noqa: E402
from herald.testing.processes import RedisServer, WorkerProcess, protocol_v2  # noqa: E402
from herald.testing.sandbox import DEFAULT_TELEGRAM_TOKEN, Chaos, Sandbox  # noqa: E402

RABBITMQ = "amqp://guest:guest@127.0.0.1:5672//"


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--kills", type=int, default=3, help="SIGKILLs during the run")
    parser.add_argument("--redis-kill", action="store_true", help="SIGKILL Redis, not restart")
    parser.add_argument("--broker", choices=["redis", "rabbitmq"], default="redis")
    parser.add_argument(
        "--fsync",
        choices=["everysec", "always"],
        default="everysec",
        help="Redis appendfsync (a SIGKILLed Redis on everysec loses up to 1 s of writes)",
    )
    parser.add_argument(
        "--retry-after", type=int, default=4, help="the provider's 429 hint, in seconds"
    )
    parser.add_argument("--fault-rate", type=float, default=0.06, help="each fault kind's share")
    parser.add_argument("--timeout", type=float, default=1500, help="seconds to wait for events")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--in-doubt",
        choices=["at_least_once", "at_most_once"],
        default="at_least_once",
        help="HERALD_IN_DOUBT for the workers",
    )
    return parser.parse_args()


def job(n: int, run: str) -> dict[str, Any]:
    return {
        "job_id": f"chaos-{run}-{n}",
        "contact": {
            "id": f"c-{n}",
            "fields": {"firstname": "Ana"},
            "channels": [{"channel_id": "tg", "identifier": str(10_000_000 + n)}],
        },
        "message": {"type": "text", "text": f"Hi $contact.firstname, message {n}"},
        "failure_branch": True,
    }


def enqueue(client: redis.Redis, queue: str, jobs: list[dict[str, Any]]) -> None:
    """As producers without Herald code do it: every other job with its record written
    first (docs/delivery.md#the-sweeper), the others as plain messages (no record until
    their first claim); then LPUSH its protocol-2 message."""
    pipe = client.pipeline(transaction=False)
    for i, item in enumerate(jobs, 1):
        if i % 2:
            key, now = f"herald:job:{item['job_id']}", int(time.time() * 1000)
            pipe.hsetnx(key, "state", "queued")
            pipe.hset(key, mapping={"payload": json.dumps(item), "queue": queue, "queued_ms": now})
            pipe.expire(key, 7 * 24 * 3600)
            pipe.zadd(f"herald:due:{queue}", {item["job_id"]: now + 30_000}, nx=True)
        pipe.lpush(queue, json.dumps(protocol_v2("herald.send_message", {"job": item}, queue)))
        if i % 1000 == 0:
            pipe.execute()
    pipe.execute()


def enqueue_rabbitmq(redis_url: str, queue: str, jobs: list[dict[str, Any]]) -> None:
    """Every other job through Herald's producer (record first), the others by plain
    send_task (no record until their first claim)."""
    from celery import Celery

    from herald.config import Settings
    from herald.producer import Producer

    app = Celery("chaos-producer", broker=RABBITMQ, set_as_current=False)
    settings = Settings(broker_url=RABBITMQ, redis_url=redis_url, queue=queue)
    with Producer(app, settings) as producer:
        for i, item in enumerate(jobs, 1):
            if i % 2:
                producer.enqueue(item)
            else:
                app.send_task(
                    "herald.send_message",
                    kwargs={"job": item},
                    queue=queue,
                    kwargsrepr=f"{{'job': <job {item['job_id']}>}}",
                )
    app.close()


def purge_rabbitmq(queue: str) -> None:
    from celery import Celery

    app = Celery("chaos-purge", broker=RABBITMQ, set_as_current=False)
    with app.connection_for_write() as conn:
        conn.default_channel.queue_delete(queue)
    app.close()


def count_events(client: redis.Redis, stream: str, prefix: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    last = "-"
    while True:
        rows = client.xrange(stream, min=last, count=5000)
        fresh = [r for r in rows if r[0] != last]
        if not fresh:
            return counts
        for entry_id, fields in fresh:
            if fields["job_id"].startswith(prefix):
                counts[fields["job_id"]] += 1
            last = entry_id


class Saboteur:
    """Breaks things as the run progresses: SIGKILLs at random points, one Redis restart."""

    def __init__(self, rng: random.Random, kills: int, *, redis_kill: bool) -> None:
        self.kill_at = sorted(rng.uniform(0.05, 0.85) for _ in range(kills))
        self.restart_at = rng.uniform(0.2, 0.7)
        self.redis_kill = redis_kill
        self.rng = rng
        self.log: list[str] = []

    def act(self, progress: float, workers: list[WorkerProcess], server: RedisServer) -> None:
        if progress >= 1.0:
            return  # every job has its outcome: a fault now would test nothing
        if self.restart_at is not None and progress >= self.restart_at:
            how = "SIGKILL" if self.redis_kill else "restart"
            self.note(f"{how} Redis at {progress:.0%}")
            server.restart(down_s=1.0, kill=self.redis_kill)
            self.restart_at = None  # type: ignore[assignment]
        while self.kill_at and progress >= self.kill_at[0]:
            self.kill_at.pop(0)
            victim = self.rng.randrange(len(workers))
            self.note(f"SIGKILL worker {victim} at {progress:.0%}")
            workers[victim].kill()
            old = workers[victim]
            workers[victim] = WorkerProcess(
                old.env, old.log.with_suffix(f".{len(self.log)}.log"), concurrency=old.concurrency
            ).start(wait_ready=False)

    def note(self, what: str) -> None:
        self.log.append(what)
        print(f"  ! {what}", flush=True)


def worker_env(
    server: RedisServer, channels: Path, concurrency: int, in_doubt: str, broker: str, queue: str
) -> dict[str, str]:
    # Only this run's settings: none inherited from the calling shell (or a test session).
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
    return {
        **inherited,
        "HERALD_IN_DOUBT": in_doubt,
        "HERALD_BROKER_URL": server.url if broker == "redis" else RABBITMQ,
        "HERALD_REDIS_URL": server.url,
        "HERALD_CHANNELS_FILE": str(channels),
        "HERALD_QUEUE": queue,
        "HERALD_SWEEP_MARGIN_S": "10",
        # Short, so a killed worker's messages come back within the run.
        "HERALD_VISIBILITY_TIMEOUT_S": "20",
        "HERALD_LEASE_S": "10",
        "HERALD_HTTP_TIMEOUT_S": "2",
        "HERALD_RETRY_BACKOFF_S": "0.2",
        "HERALD_RETRY_BACKOFF_MAX_S": "3",
        "HERALD_RETRY_MAX_ATTEMPTS": "12",
        # One chat per job: no per-chat limit needed, and no bot-wide one for the load.
        "HERALD_RATE_LIMITS": json.dumps({"telegram": {}}),
        "HERALD_WORKER_CONCURRENCY": str(concurrency),
    }


def wait_for_outcomes(
    client: redis.Redis, prefix: str, total: int, timeout: float, tick: Any
) -> None:
    started = time.monotonic()
    seen: set[str] = set()
    last, printed = "-", 0.0
    while time.monotonic() - started < timeout:
        try:
            rows = client.xrange("herald:events", min=last, count=10_000)
        except redis.ConnectionError:
            time.sleep(0.5)
            continue
        for entry_id, fields in rows:
            if entry_id != last and fields["job_id"].startswith(prefix):
                seen.add(fields["job_id"])
        last = rows[-1][0] if rows else last
        tick(len(seen) / total)
        elapsed = time.monotonic() - started
        if len(seen) >= total or elapsed - printed >= 2:
            printed = elapsed
            print(f"  {len(seen)}/{total} jobs have an outcome ({elapsed:.0f}s)", flush=True)
        if len(seen) >= total:
            return
        time.sleep(0.5)


def chat_of(body: bytes) -> str:
    """The chat a request was for ("" for a body cut short by a killed worker)."""
    try:
        return str(json.loads(body)["chat_id"])
    except (ValueError, KeyError):
        return ""


def report(
    jobs: list[dict[str, Any]],
    events: Counter[str],
    outcomes: Counter[str],
    processed: dict[str, int],
    requests: int,
    in_doubt: int,
    republished: int,
    elapsed: float,
    at_most_once: bool,
) -> bool:
    lost = [j["job_id"] for j in jobs if events[j["job_id"]] == 0]
    duplicate_events = sum(n - 1 for n in events.values() if n > 1)
    duplicate_sends = sum(n - 1 for n in processed.values() if n > 1)
    print()
    print(f"jobs enqueued            {len(jobs)}")
    print(
        f"outcome events           {sum(events.values())} "
        f"(sent {outcomes['sent']}, failed {outcomes['failed']})"
    )
    print(f"lost jobs                {len(lost)}")
    print(f"duplicate events         {duplicate_events}")
    print(f"duplicate provider sends {duplicate_sends}")
    print(f"in-doubt count           {in_doubt}")
    print(f"republished by sweeper   {republished}")
    print(f"provider requests        {requests}")
    print(f"elapsed                  {elapsed:.0f}s")
    # At most once: no send may be repeated at all; at least once: only in-doubt ones.
    allowed = 0 if at_most_once else in_doubt
    ok = not lost and duplicate_events == 0 and duplicate_sends <= allowed
    print("result                   " + ("PASS" if ok else "FAIL"))
    return ok


def main() -> int:
    args = parse()
    rng = random.Random(args.seed)
    run = uuid.uuid4().hex[:6]
    folder = Path(tempfile.mkdtemp(prefix="herald-chaos-"))
    rate = args.fault_rate
    chaos = Chaos(
        fail_before=rate,
        throttle=rate / 2,
        reset_before=rate / 2,
        fail_after=rate,
        reset_after=rate / 2,
        hang_after=rate / 4,
        hang_s=4.0,
        retry_after_s=args.retry_after,
    )
    saboteur = Saboteur(rng, args.kills, redis_kill=args.redis_kill)
    queue = "herald" if args.broker == "redis" else f"herald-chaos-{run}"
    with Sandbox() as sandbox:
        sandbox.chaos = chaos
        server = RedisServer(folder / "redis", fsync=args.fsync).start()
        channels = folder / "channels.toml"
        channels.write_text(
            f'[channels.tg]\ntype = "telegram"\nbot_token = "{DEFAULT_TELEGRAM_TOKEN}"\n'
            f'base_url = "{sandbox.url}"\n'
        )
        env = worker_env(server, channels, args.concurrency, args.in_doubt, args.broker, queue)
        client = redis.Redis.from_url(server.url, decode_responses=True)
        jobs = [job(n, run) for n in range(args.jobs)]
        started = time.monotonic()
        if args.broker == "redis":
            enqueue(client, queue, jobs)
        else:
            enqueue_rabbitmq(server.url, queue, jobs)
        print(f"enqueued {len(jobs)} jobs in {time.monotonic() - started:.1f}s", flush=True)
        workers = [
            WorkerProcess(env, folder / f"worker-{i}.log", concurrency=args.concurrency).start()
            for i in range(args.workers)
        ]
        prefix = f"chaos-{run}-"
        wait_for_outcomes(
            client,
            prefix,
            len(jobs),
            args.timeout,
            lambda progress: saboteur.act(progress, workers, server),
        )
        time.sleep(3)  # let a (wrong) late duplicate show up before counting
        elapsed = time.monotonic() - started
        events = count_events(client, "herald:events", prefix)
        outcomes = Counter(
            json.loads(f["data"])["outcome"]
            for _, f in client.xrange("herald:events")
            if f["job_id"].startswith(prefix)
        )
        in_doubt = int(client.hget(STATS_KEY, "in_doubt") or 0)
        republished = int(client.hget(STATS_KEY, "republished") or 0)
        chats = {chat_of(r.body) for r in sandbox.requests if r.provider == "telegram"}
        processed = {chat: sandbox.counter(f"telegram:{chat}") for chat in chats}
        requests = sum(1 for r in sandbox.requests if r.provider == "telegram")
        for worker in workers:
            if worker.alive:
                worker.terminate()
        server.stop()
        if args.broker == "rabbitmq":
            purge_rabbitmq(queue)
    ok = report(
        jobs,
        events,
        outcomes,
        processed,
        requests,
        in_doubt,
        republished,
        elapsed,
        args.in_doubt == "at_most_once",
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
