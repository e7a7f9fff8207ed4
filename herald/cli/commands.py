"""The ``herald`` command: worker, send, events, channels, schema, demo."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import redis
import typer
from pydantic import BaseModel
from rich.console import Console

from herald.cli.tables import channels_table, events_table, snippets_table
from herald.config import Settings, load_channels
from herald.contract.errors import ConfigError, InvalidJob
from herald.contract.events import OutcomeEvent

cli = typer.Typer(help="Herald: the 'Send a Message' step, as a Celery worker fleet on Redis.")
channels_cli = typer.Typer(help="Inspect the channels file.")
cli.add_typer(channels_cli, name="channels")
snippets_cli = typer.Typer(help="The run-time snippet library (no worker restart needed).")
cli.add_typer(snippets_cli, name="snippets")
console = Console()
if not console.is_terminal:  # piped or logged: do not squeeze tables into 80 columns
    console = Console(width=160)
errors = Console(stderr=True)


@cli.callback()
def _settings(ctx: typer.Context) -> None:
    """Herald: the 'Send a Message' step, as a Celery worker fleet on Redis."""
    # Read the HERALD_* settings once; every command takes them from here.
    ctx.obj = Settings()


def _fail(message: str, code: int = 2) -> typer.Exit:
    errors.print(f"[red]herald:[/red] {message}", highlight=False)
    return typer.Exit(code)


@cli.command()
def worker(
    ctx: typer.Context,
    concurrency: Annotated[int | None, typer.Option(help="Concurrent sends.")] = None,
    pool: Annotated[str | None, typer.Option(help="threads | gevent | prefork | solo")] = None,
    loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "INFO",
) -> None:
    """Start a worker (task events on, for Flower) on Herald's queue."""
    from herald.worker import app

    settings: Settings = ctx.obj
    argv = ["worker", "-E", "-Q", settings.queue, f"--loglevel={loglevel}"]
    argv += [f"--concurrency={concurrency or settings.worker_concurrency}"]
    argv += [f"--pool={pool or settings.worker_pool}"]
    app.worker_main(argv)


@cli.command()
def send(
    file: Annotated[str, typer.Argument(help="A job as JSON: a file, or - for stdin.")] = "-",
) -> None:
    """Validate a job, enqueue it, and print its job_id."""
    from herald.producer import enqueue
    from herald.worker import app

    text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise _fail(f"not JSON: {exc}") from exc
    try:
        job_id = enqueue(app, raw)
    except InvalidJob as exc:
        raise _fail(exc.message) from exc
    console.print(job_id, highlight=False)


def _print_events(entries: list[tuple[str, OutcomeEvent]], as_json: bool) -> None:
    if as_json:
        for entry_id, event in entries:
            print(json.dumps({"id": entry_id, **event.model_dump(mode="json")}), flush=True)
    elif entries:
        console.print(events_table([event for _, event in entries]))


@cli.command()
def events(
    ctx: typer.Context,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Wait for new events.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object a line.")] = False,
    count: Annotated[int, typer.Option(help="How many of the newest events.")] = 20,
) -> None:
    """Print outcome events from the stream (the newest ``count``; ``--follow`` for more)."""
    from herald.store import stream

    settings: Settings = ctx.obj
    client = _state_redis(settings)
    shown = stream.newest(client, settings.events_stream, count)
    _print_events(shown, as_json)
    last = shown[-1][0] if shown else stream.last_id(client, settings.events_stream)
    while follow:
        fresh = stream.read_after(client, settings.events_stream, last, block_ms=5000)
        _print_events(fresh, as_json)
        last = fresh[-1][0] if fresh else last


@cli.command()
def schema(
    which: Annotated[str, typer.Argument(help="job | event | interaction")],
) -> None:
    """Print the JSON Schema of the send job, the outcome event or the interaction."""
    from herald.contract.job import Interaction, SendJob

    models: dict[str, type[BaseModel]] = {
        "job": SendJob,
        "event": OutcomeEvent,
        "interaction": Interaction,
    }
    if which not in models:
        raise _fail(f"unknown schema {which!r}: choose job, event or interaction")
    print(json.dumps(models[which].model_json_schema(), indent=2))


@channels_cli.command("check")
def channels_check(
    ctx: typer.Context,
    file: Annotated[Path | None, typer.Argument(help="Defaults to HERALD_CHANNELS_FILE.")] = None,
) -> None:
    """Validate the channels file and list its channels, without secrets."""
    from herald.adapters import adapter_class

    path = file or ctx.obj.channels_file
    if not path.exists():
        raise _fail(f"{path}: no such channels file", 1)
    try:
        channels = load_channels(path)
        for channel in channels.values():
            adapter_class(channel)
    except ConfigError as exc:
        raise _fail(f"{path}: {exc}", 1) from exc
    console.print(channels_table(channels))
    console.print(f"{path}: {len(channels)} channel(s), ok", highlight=False)


def _state_redis(settings: Settings) -> redis.Redis:
    from herald.store.connection import resolve_urls

    return redis.Redis.from_url(resolve_urls(settings).redis)


@snippets_cli.command("list")
def snippets_list(ctx: typer.Context) -> None:
    """List the snippets: the file's and the run-time ones (which win)."""
    from herald.config.snippets import load_snippets
    from herald.store.snippets import live_snippets

    settings: Settings = ctx.obj
    try:
        from_file = load_snippets(settings.snippets_file)
    except ConfigError as exc:
        raise _fail(str(exc), 1) from exc
    live = live_snippets(_state_redis(settings))
    console.print(snippets_table(from_file, live))


@snippets_cli.command("set")
def snippets_set(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Letters, digits, _ and -.")],
    text: Annotated[str, typer.Argument(help="The text; may hold $variables.")],
) -> None:
    """Add or replace a run-time snippet."""
    from herald.store.snippets import set_snippet

    try:
        set_snippet(_state_redis(ctx.obj), name, text)
    except ConfigError as exc:
        raise _fail(str(exc)) from exc
    console.print(f"/{name} set", highlight=False)


@snippets_cli.command("delete")
def snippets_delete(ctx: typer.Context, name: Annotated[str, typer.Argument()]) -> None:
    """Remove a run-time snippet."""
    from herald.store.snippets import delete_snippet

    if not delete_snippet(_state_redis(ctx.obj), name):
        raise _fail(f"no run-time snippet /{name}", 1)
    console.print(f"/{name} deleted", highlight=False)


@cli.command()
def demo(
    ctx: typer.Context,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the outcomes.")] = 90.0,
) -> None:
    """Run Herald end to end on this machine: embedded Redis, a worker, a sandbox provider."""
    from herald.cli.demo import run_demo

    raise typer.Exit(run_demo(console, ctx.obj, timeout=timeout))


def main() -> None:
    """Entry point of the ``herald`` console script."""
    cli()
