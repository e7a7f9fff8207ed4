"""The ``herald`` command: worker, send, events, job, ping, channels, snippets, files, redis,
schema, webhooks, demo.

Every failure a person can act on is one line on stderr and a non-zero exit: a server
that does not answer (named by URL, password hidden, and by the variable it came from),
a bad file, a bad setting. :class:`HeraldGroup` turns the errors that escape a command
into such a line.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any

import redis
import typer
from kombu.exceptions import OperationalError
from pydantic import BaseModel, ValidationError
from typer.core import TyperGroup

from herald.cli import jobs
from herald.cli.connect import Session, Unreachable, lost
from herald.cli.follow import follow_group, follow_stream
from herald.cli.output import console, fail, line, note
from herald.cli.ping import NoAnswer
from herald.cli.ping import ping as ping_servers
from herald.cli.tables import (
    channels_table,
    events_table,
    job_table,
    registrations_table,
    snippets_table,
)
from herald.config import Settings, load_channels, redact_url
from herald.contract.errors import ConfigError, InvalidJob
from herald.contract.events import OutcomeEvent
from herald.contract.job import parse_job
from herald.store import embedded, stream
from herald.store.stream import ConsumerGroup


class HeraldGroup(TyperGroup):
    """The ``herald`` group: errors that escape a command become one line and exit 1."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (Unreachable, ConfigError, NoAnswer) as exc:
            raise fail(str(exc), 1) from None
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise fail(_lost(ctx, "state", exc), 1) from None
        except OperationalError as exc:
            raise fail(_lost(ctx, "broker", exc), 1) from None
        except BrokenPipeError:
            # The reader went away (`herald events -f | head`): stop quietly.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(1) from None


def _lost(ctx: Any, which: str, error: BaseException) -> str:
    session = ctx.obj
    if isinstance(session, Session) and "endpoints" in session.__dict__:
        return lost(getattr(session, which), error)
    return f"lost the connection to Redis or the broker: {error}"


def _typer(help_text: str) -> typer.Typer:
    # Plain help: rich's help shows every flag as taking a <bool> value.
    return typer.Typer(help=help_text, rich_markup_mode=None, pretty_exceptions_show_locals=False)


cli = typer.Typer(
    cls=HeraldGroup,
    help="Herald: the 'Send a Message' step, as a Celery worker fleet on Redis.",
    rich_markup_mode=None,
    # A traceback's locals would show settings, URLs and jobs: never print them.
    pretty_exceptions_show_locals=False,
)
channels_cli = _typer("Inspect the channels file.")
cli.add_typer(channels_cli, name="channels")
snippets_cli = _typer("The run-time snippet library (no worker restart needed).")
cli.add_typer(snippets_cli, name="snippets")
files_cli = _typer(
    "The file library: files added once and sent by file_id on every channel"
    " (docs/content.md#the-file-library)."
)
cli.add_typer(files_cli, name="files")
redis_cli = _typer("The embedded Redis Herald starts when HERALD_BROKER_URL is unset.")
cli.add_typer(redis_cli, name="redis")
webhooks_cli = typer.Typer(
    help="Provider webhooks: inbound messages and delivery statuses (docs/webhooks.md).",
    rich_markup_mode=None,
    pretty_exceptions_show_locals=False,
    invoke_without_command=True,
)
cli.add_typer(webhooks_cli, name="webhooks")


def _print_version(wanted: bool) -> None:
    if wanted:
        print(f"herald {metadata.version('herald')}")
        raise typer.Exit()


@cli.callback()
def _session(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """Herald: the 'Send a Message' step, as a Celery worker fleet on Redis."""
    # Read the HERALD_* settings once; every command takes them from here.
    try:
        ctx.obj = Session(Settings())
    except ValidationError as exc:
        problems = [
            f"HERALD_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors(include_url=False)
        ]
        raise fail("invalid settings: " + "; ".join(problems), 1) from None


@cli.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def worker(
    ctx: typer.Context,
    processes: Annotated[
        int | None, typer.Option(help="Worker processes (default: one per core).", min=1)
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(help="Concurrent sends per process.", min=1)
    ] = None,
    pool: Annotated[str | None, typer.Option(help="threads | gevent | prefork | solo")] = None,
    loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "INFO",
) -> None:
    """Start the workers of this host (task events on, for Flower): one process per core,
    each with an I/O-concurrent pool, supervised. Celery's own worker flags (-Q,
    --prefetch-multiplier, ...) are passed on to each process and win over the settings."""
    from herald.worker.flags import given
    from herald.worker.supervisor import Plan, Supervisor, host_cores

    settings = given(["herald", "worker", *ctx.args]).over(ctx.obj.settings)
    env = dict(os.environ)
    if not settings.broker_url:
        server = embedded.ensure(settings.data_dir)
        note(
            f"embedded Redis at {server.url} (data in {settings.data_dir}); it keeps running"
            " after the worker stops: herald redis url, herald redis stop"
        )
        env["HERALD_BROKER_URL"] = server.url
    # No reachability check here: a worker waits for its broker, retrying (one log line
    # each time), so a fleet may start before Redis does.
    pool = pool or settings.worker_pool
    cores = host_cores()
    # The prefork pool is one process per slot already: one of it is enough.
    default = 1 if pool == "prefork" else settings.worker_processes or cores
    plan = Plan(
        processes=processes or default,
        pool=pool,
        concurrency=concurrency or settings.worker_concurrency,
        extra=tuple(ctx.args),
        loglevel=loglevel,
        metrics_port=settings.metrics_port,
    )
    note(plan.banner(cores, settings.consumed))
    raise typer.Exit(Supervisor(plan, env).run())


def _read_job(file: str) -> Any:
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        raise fail(f"{file}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise fail(f"{file}: not UTF-8 text ({exc.reason})") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise fail(f"{file}: not JSON: {exc}") from None


@cli.command()
def send(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="A job as JSON: a file, or - for stdin.")] = "-",
) -> None:
    """Validate a job, enqueue it, and print its job_id."""
    from herald.producer import enqueue
    from herald.worker import app

    session: Session = ctx.obj
    raw = _read_job(file)
    try:
        job_id = parse_job(raw).job_id
    except InvalidJob as exc:
        raise fail(exc.message) from None
    session.check_broker()
    if job_id and _already_done(session, job_id):
        line(job_id)
        return
    line(enqueue(app, raw))


def _already_done(session: Session, job_id: str) -> bool:
    """Say so when ``job_id`` has finished (it is not enqueued again) or is on its way."""
    view = jobs.look_up(session.redis(), session.settings.events_stream, job_id)
    if view.finished:
        note(
            f"job {job_id} already finished: {jobs.summary(view)}; a job_id is sent once,"
            f" so it was not enqueued again (herald job {job_id})"
        )
        return True
    if view.record:
        note(
            f"job {job_id} is already {view.record.get('state', 'known')}; enqueued again,"
            " it is still sent once"
        )
    return False


def _printer(as_json: bool) -> Any:
    def show(entries: list[tuple[str, OutcomeEvent]]) -> None:
        if as_json:
            for entry_id, event in entries:
                print(json.dumps({"id": entry_id, **event.model_dump(mode="json")}), flush=True)
        elif entries:
            console.print(events_table([event for _, event in entries]))
            sys.stdout.flush()

    return show


@cli.command()
def events(
    ctx: typer.Context,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new events as they come.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object a line.")] = False,
    count: Annotated[
        int, typer.Option(min=0, help="How many of the newest events first (0: none).")
    ] = 20,
    group: Annotated[
        str | None,
        typer.Option(help="With --follow: read through this consumer group, acking each."),
    ] = None,
    consumer: Annotated[
        str | None, typer.Option(help="This consumer's name in --group (default: host name).")
    ] = None,
    claim_idle: Annotated[
        float,
        typer.Option(min=0.1, help="With --group: take over others' events idle this many s."),
    ] = 60.0,
) -> None:
    """Print outcome events: the newest, and with --follow new ones as they come."""
    session: Session = ctx.obj
    name = session.settings.events_stream
    if (group or consumer) and not follow:
        raise fail("--group and --consumer read with --follow")
    if consumer and not group:
        raise fail("--consumer needs --group")
    client = session.redis(retries=0)
    show = _printer(as_json)
    if group:
        me = consumer or socket.gethostname()
        note(f"reading {name} as {me} of group {group} (Ctrl-C to stop)")
        reader = ConsumerGroup(client, name, group, me, claim_idle_ms=int(claim_idle * 1000))
        _until_interrupted(lambda: follow_group(reader, show, session.state))
        return
    shown = stream.newest(client, name, count)
    show(shown)
    if not shown and count:
        note(f"no events in {name} yet" + ("; waiting for new ones" if follow else ""))
    if not follow:
        return
    note(f"following {name} (Ctrl-C to stop)")
    last = shown[-1][0] if shown else stream.last_id(client, name)
    _until_interrupted(lambda: follow_stream(client, name, last, show, session.state))


def _until_interrupted(run: Any) -> None:
    try:
        run()
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


@cli.command()
def job(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(help="The job's job_id.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """Look one job up: its state, attempts, parts, last error and its outcome event."""
    session: Session = ctx.obj
    view = jobs.look_up(session.redis(), session.settings.events_stream, job_id)
    if not view.found:
        raise fail(
            f"no job {job_id}: no record in Redis and no event in"
            f" {session.settings.events_stream} (not enqueued with herald.enqueue and not"
            " claimed yet, or older than HERALD_STATE_RETENTION_S)",
            1,
        )
    if as_json:
        print(json.dumps(view.as_json()))
    else:
        console.print(job_table(view))


@cli.command()
def ping(
    ctx: typer.Context,
    worker: Annotated[
        str | None, typer.Option(help="This worker must answer, e.g. celery@$HOSTNAME.")
    ] = None,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds to wait for workers.")] = 2.0,
) -> None:
    """Check that the broker and Redis answer, and that workers answer a Celery ping."""
    line(ping_servers(ctx.obj, worker=worker, timeout=timeout))


@cli.command()
def schema(
    which: Annotated[str, typer.Argument(help="job | batch | event | interaction")],
) -> None:
    """Print the JSON Schema of the send job, the batch, the outcome event or the
    interaction."""
    from herald.contract.job import Batch, Interaction, SendJob

    models: dict[str, type[BaseModel]] = {
        "job": SendJob,
        "batch": Batch,
        "event": OutcomeEvent,
        "interaction": Interaction,
    }
    if which not in models:
        raise fail(f"unknown schema {which!r}: choose job, batch, event or interaction")
    print(json.dumps(models[which].model_json_schema(), indent=2))


@channels_cli.command("check")
def channels_check(
    ctx: typer.Context,
    file: Annotated[Path | None, typer.Argument(help="Defaults to HERALD_CHANNELS_FILE.")] = None,
) -> None:
    """Validate the channels file and list its channels, without secrets."""
    from herald.adapters import adapter_class

    path = file or ctx.obj.settings.channels_file
    if not path.exists():
        raise fail(f"{path}: no such channels file", 1)
    try:
        channels = load_channels(path)
        for channel in channels.values():
            adapter_class(channel)
    except ConfigError as exc:
        raise fail(f"{path}: {exc}", 1) from None
    console.print(channels_table(channels))
    from herald.webhooks.verify import missing

    for channel_id, channel in channels.items():
        lacking = missing(channel)
        if lacking:
            note(
                f"channel {channel_id}: no {', '.join(lacking)}; its webhooks cannot be"
                " verified, and herald webhooks refuses them"
            )
    line(f"{path}: {len(channels)} channel(s), ok")


@webhooks_cli.callback()
def webhooks(
    ctx: typer.Context,
    loglevel: Annotated[str, typer.Option(help="Log level.")] = "info",
) -> None:
    """Serve the providers' webhooks at HERALD_WEBHOOKS_BIND (/webhooks/<channel_id>)."""
    if ctx.invoked_subcommand is not None:
        return
    from herald.webhooks.server import serve

    session: Session = ctx.obj
    session.redis().close()  # one line, not a traceback, when Redis does not answer
    line(f"herald webhooks on http://{session.settings.webhooks_bind}")
    serve(session.settings, log_level=loglevel.lower())


@webhooks_cli.command("urls")
def webhooks_urls(ctx: typer.Context) -> None:
    """Print the URL to register with each channel's provider, and where."""
    from herald.webhooks.server import registrations

    settings = ctx.obj.settings
    if not settings.webhooks_public_url:
        note("HERALD_WEBHOOKS_PUBLIC_URL is unset: these URLs are the local bind address")
    console.print(
        registrations_table(registrations(settings, load_channels(settings.channels_file)))
    )


@snippets_cli.command("list")
def snippets_list(ctx: typer.Context) -> None:
    """List the snippets: the file's and the run-time ones (which win)."""
    from herald.config.snippets import load_snippets
    from herald.store.snippets import live_snippets

    session: Session = ctx.obj
    try:
        from_file = load_snippets(session.settings.snippets_file)
    except ConfigError as exc:
        raise fail(str(exc), 1) from None
    console.print(snippets_table(from_file, live_snippets(session.redis())))


@snippets_cli.command("set")
def snippets_set(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Letters, digits, _ and -.")],
    text: Annotated[str, typer.Argument(help="The text; may hold $variables.")],
) -> None:
    """Add or replace a run-time snippet."""
    from herald.store.snippets import set_snippet

    try:
        set_snippet(ctx.obj.redis(), name, text)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    line(f"/{name} set")


@snippets_cli.command("delete")
def snippets_delete(ctx: typer.Context, name: Annotated[str, typer.Argument()]) -> None:
    """Remove a run-time snippet."""
    from herald.store.snippets import delete_snippet

    if not delete_snippet(ctx.obj.redis(), name):
        raise fail(f"no run-time snippet /{name}", 1)
    line(f"/{name} deleted")


def _file_store(ctx: typer.Context) -> Any:
    from herald.files.store import RedisFileStore

    session: Session = ctx.obj
    session.redis()  # checked to answer (a clear error when it does not)
    client = redis.Redis.from_url(session.state.url, socket_timeout=60)
    settings = session.settings
    return RedisFileStore(
        client, max_bytes=settings.files_max_bytes, quota_bytes=settings.files_quota_bytes
    )


@files_cli.command("add")
def files_add(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="The file to add.", exists=True, dir_okay=False)],
    name: Annotated[
        str | None, typer.Option("--name", help="Its name (default: the file's name).")
    ] = None,
) -> None:
    """Add a file (its content type is read from its bytes); prints its new id."""
    from herald.contract.errors import FileRefused
    from herald.files.library import add_file

    try:
        info, warnings = add_file(_file_store(ctx), path, name=name)
    except FileRefused as exc:
        raise fail(str(exc), 1) from None
    line(info.id)
    note(f"{info.name}: {info.content_type}, {info.size} bytes, sha256 {info.sha256}")
    for warning in warnings:
        note(f"warning: {warning}: jobs sending it there fail with invalid_content")


@files_cli.command("list")
def files_list(ctx: typer.Context) -> None:
    """List the library's files, oldest first: id, name, type, size, added."""
    for info in _file_store(ctx).list():
        line(f"{info.id}  {info.name}  {info.content_type}  {info.size}  {info.created_at}")


@files_cli.command("show")
def files_show(ctx: typer.Context, file_id: Annotated[str, typer.Argument()]) -> None:
    """Print one file's description as JSON."""
    info = _file_store(ctx).info(file_id)
    if info is None:
        raise fail(f"no file {file_id} in the library", 1)
    line(json.dumps(info.as_json(), ensure_ascii=False))


@files_cli.command("delete")
def files_delete(ctx: typer.Context, file_id: Annotated[str, typer.Argument()]) -> None:
    """Remove a file (jobs that name it fail with invalid_job from then on)."""
    if not _file_store(ctx).delete(file_id):
        raise fail(f"no file {file_id} in the library", 1)
    line(f"{file_id} deleted")


def _embedded_url(settings: Settings) -> str:
    if settings.broker_url:
        note(
            f"HERALD_BROKER_URL is set: Herald uses {redact_url(settings.broker_url)},"
            " not the embedded Redis"
        )
    url = embedded.running_url(settings.data_dir)
    if url is None:
        raise fail(
            f"no embedded Redis runs for {settings.data_dir} (HERALD_DATA_DIR);"
            " herald worker starts it",
            1,
        )
    return url


@redis_cli.command("url")
def redis_url(ctx: typer.Context) -> None:
    """Print the embedded Redis's URL: the broker URL for producers on this machine."""
    line(_embedded_url(ctx.obj.settings))


@redis_cli.command("stop")
def redis_stop(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option("--force", help="Stop it even if clients use it.")] = False,
) -> None:
    """Stop the embedded Redis (its data stays, and the next worker starts it again)."""
    settings = ctx.obj.settings
    url = _embedded_url(settings)
    others = embedded.other_clients(url)
    if others and not force:
        raise fail(
            f"{others} client(s) are connected to {url} (a worker? a producer?):"
            " stop them first, or use --force",
            1,
        )
    embedded.stop(settings.data_dir)
    line(f"stopped the embedded Redis at {url}; its data stays in {settings.data_dir}")


@cli.command()
def demo(
    ctx: typer.Context,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the outcomes.")] = 90.0,
) -> None:
    """Run Herald end to end on this machine: embedded Redis, a worker, a sandbox provider."""
    from herald.cli.demo import run_demo

    session: Session = ctx.obj
    if session.settings.broker_url:  # else the demo starts (and then stops) its own
        session.check_broker()
    raise typer.Exit(run_demo(console, session.settings, timeout=timeout))


def main() -> None:
    """Entry point of the ``herald`` console script."""
    cli()
