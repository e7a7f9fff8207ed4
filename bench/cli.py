"""The benchmark's command line: ``python -m bench [--scenario NAME ...] [--json PATH]``."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import Any

import redis
from rich.console import Console

from bench.processes import Processes
from bench.report import markdown, print_tables, summarize, targets
from bench.run import ROOT, Options, Runner
from bench.scenarios import NAMES, Case, Kind, Knobs, Scenario, scenarios


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Herald against bare Celery tasks, on the same broker, pool and "
        "concurrency, in one run (docs/performance.md).",
    )
    parser.add_argument(
        "--scenario",
        action="append",
        choices=NAMES,
        metavar="NAME",
        help=f"run only this scenario (repeatable; default all): {', '.join(NAMES)}",
    )
    parser.add_argument("--repeat", type=int, default=3, help="repeats of every case (3)")
    parser.add_argument("--jobs", type=int, help="jobs per drain (default per scenario)")
    parser.add_argument("--samples", type=int, help="idle scenario: jobs timed one by one")
    parser.add_argument("--latency", type=float, metavar="MS", help="provider latency, ms")
    parser.add_argument("--pool", help="pool of every case that names one")
    parser.add_argument("--concurrency", type=int, help="concurrency of those cases")
    parser.add_argument("--batch-size", type=int, default=100, help="jobs per send_batch (100)")
    parser.add_argument("--redis-url", help="use this Redis (flushed per case; idle otherwise)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results as JSON")
    parser.add_argument(
        "--markdown", type=Path, metavar="PATH", help="also write the tables as Markdown"
    )
    parser.add_argument("--loglevel", default="WARNING", help="the workers' log level")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs)")
    return parser.parse_args(argv)


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def machine(redis_url: str | None) -> dict[str, Any]:
    """Where and with what the figures were measured."""
    versions: dict[str, str | None] = {}
    for name in ("celery", "kombu", "redis", "httpx", "httpcore", "hiredis"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "packages": versions,
        "redis": redis_url or "a redis-server per case (embedded binary)",
    }


class Bench:
    """One invocation: the provider, the runner, and the records they produce."""

    def __init__(self, args: argparse.Namespace, folder: Path, console: Console) -> None:
        self.args = args
        self.console = console
        self.processes = Processes(folder)
        self.records: list[dict[str, Any]] = []
        knobs = Knobs(
            jobs=args.jobs,
            latency_ms=args.latency,
            pool=args.pool,
            concurrency=args.concurrency,
            batch=args.batch_size,
            samples=args.samples,
        )
        chosen = args.scenario or NAMES
        self.scenarios = [s for s in scenarios(knobs) if s.name in chosen]
        self.folder = folder
        self.redis_version: str | None = None

    def run(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        provider = self.processes.start(
            "provider", [sys.executable, "-m", "bench.provider", "--latency-ms", "0"], env
        )
        port = provider.wait_for_line("listening", 30).split()[-1]
        runner = Runner(
            Options(
                self.folder, f"http://127.0.0.1:{port}", self.args.redis_url, self.args.loglevel
            ),
            self.processes,
        )
        try:
            self._repeats(runner)
        finally:
            self.redis_version = runner.redis_version

    def _repeats(self, runner: Runner) -> None:
        for repeat in range(1, self.args.repeat + 1):
            shared: dict[tuple[object, ...], dict[str, Any]] = {}
            for scenario in self.scenarios:
                for case in scenario.cases:
                    if case.key not in shared:
                        shared[case.key] = self.measure(runner, scenario, case, repeat)
                    self.records.append(self.record(scenario, case, repeat, shared[case.key]))

    def measure(
        self, runner: Runner, scenario: Scenario, case: Case, repeat: int
    ) -> dict[str, Any]:
        started = time.monotonic()
        try:
            if case.kind is Kind.ENQUEUE_MANY:
                result = runner.enqueue_many(case)
            elif scenario.idle:
                result = runner.idle(case)
            else:
                result = runner.drain(case)
        except (RuntimeError, OSError, redis.RedisError) as exc:
            result = {"status": f"failed: {str(exc).splitlines()[0][:200]}"}
            (self.folder / "errors.log").open("a").write(f"{case.label()}: {exc}\n")
        figure = result.get("p50_ms", result.get("jobs_per_s", result.get("msg_per_s")))
        unit = " ms p50" if "p50_ms" in result else "/s"
        shown = f"{figure:,.1f}{unit}" if figure is not None else result.get("status")
        self.console.print(
            f"[{repeat}/{self.args.repeat}] {scenario.name:9s} {case.label():48s} {shown}"
            f"  ({time.monotonic() - started:.0f} s)",
            highlight=False,
        )
        return result

    def record(
        self, scenario: Scenario, case: Case, repeat: int, result: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "scenario": scenario.name,
            "case": case.label(),
            "kind": str(case.kind),
            "setup": case.setup(),
            "repeat": repeat,
            "pool": case.pool,
            "concurrency": case.concurrency,
            "latency_ms": case.latency_ms,
            "batch": case.batch,
            "planned_jobs": case.jobs,
            **result,
        }


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    # Wide enough for the table when the output is a file or a pipe (rich's default: 80).
    console = Console(width=None if sys.stdout.isatty() else 200)
    folder = Path(tempfile.mkdtemp(prefix="herald-bench-"))
    info = machine(args.redis_url)
    bench = Bench(args, folder, console)
    console.print(
        f"{info['cpus']} CPUs, load {info['loadavg_at_start']}; scenarios: "
        f"{', '.join(s.name for s in bench.scenarios)}; {args.repeat} repeat(s); "
        f"logs in {folder}",
        highlight=False,
    )
    interrupted = False
    try:
        bench.run()
    except KeyboardInterrupt:
        interrupted = True
        console.print("interrupted: stopping every process, reporting what ran")
    finally:
        bench.processes.close()
    info["redis_server"] = bench.redis_version
    rows = summarize(bench.records)
    goals = targets(bench.scenarios, bench.records)
    print_tables(console, rows, goals)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "command": [
                        "python",
                        "-m",
                        "bench",
                        *(argv if argv is not None else sys.argv[1:]),
                    ],
                    "machine": info,
                    "runs": bench.records,
                    "summary": rows,
                    "targets": goals,
                },
                indent=2,
            )
            + "\n"
        )
        console.print(f"JSON written to {args.json}", highlight=False)
    if args.markdown:
        args.markdown.write_text(markdown(rows, goals))
        console.print(f"Markdown written to {args.markdown}", highlight=False)
    if args.keep:
        console.print(f"logs kept in {folder}", highlight=False)
    else:
        shutil.rmtree(folder, ignore_errors=True)
    return 130 if interrupted else 0
