"""Rich tables of outcome events, one job, channels and snippets, for the CLI and the demo.

Every value from a job, a provider or a file is shown as text, never read as rich markup.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text

from herald.cli.jobs import JobView
from herald.config import ChannelConfig, redact_url
from herald.contract.events import OutcomeEvent

if TYPE_CHECKING:
    from herald.webhooks.server import Registration

#: Characters of an error message an events table shows (``--json`` has all of it).
ERROR_SHOWN = 60


def shorten(message: str, limit: int = ERROR_SHOWN) -> str:
    """``message`` on one line, cut to ``limit`` characters with an ellipsis."""
    flat = " ".join(message.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _error(event: OutcomeEvent) -> str:
    error = event.data.error
    return f"{error.code}: {shorten(error.message)}" if error else ""


def events_table(events: list[OutcomeEvent]) -> Table:
    """Outcome events as a rich table (the error's code and message, shortened)."""
    table = Table("event", "job_id", "channel", "next", "error", "provider ids", "attempts")
    for event in events:
        data = event.data
        style = "green" if data.outcome == "sent" else "red"
        table.add_row(
            Text(event.event, style=style),
            Text(event.job_id or "∅"),
            Text(data.channel_id or "-"),
            data.next,
            Text(_error(event)),
            Text(", ".join(data.provider_message_ids)),
            str(data.attempts),
        )
    return table


def job_table(view: JobView) -> Table:
    """One job: its record's fields and its event, as two columns."""
    table = Table(show_header=False)
    table.add_row("job", Text(view.job_id))
    record = view.record
    if not record:
        table.add_row("record", "none (not claimed yet, or past HERALD_STATE_RETENTION_S)")
    for name in ("state", "attempts", "first_seen", "in_doubt", "queue"):
        if name in record:
            table.add_row(name.replace("_", " "), Text(record[name]))
    for index, ids in sorted(view.parts().items()):
        table.add_row(f"part {index}", Text(", ".join(ids) or "accepted"))
    event = view.event
    if event is None:
        table.add_row("event", "none in the stream" + (" (trimmed?)" if view.finished else ""))
        return table
    data = event.data
    table.add_row("event", Text(f"{event.event} (entry {view.entry_id})"))
    table.add_row("next", data.next)
    table.add_row("channel", Text(f"{data.channel_id or '-'} ({data.channel_type or '-'})"))
    if data.provider_message_ids:
        table.add_row("provider ids", Text(", ".join(data.provider_message_ids)))
    if data.error is not None:
        error = data.error
        code = (
            f"{error.code}, provider {error.provider_code}" if error.provider_code else error.code
        )
        table.add_row("error", Text(f"{code}: {error.message}"))
    table.add_row("enqueued at", data.enqueued_at)
    table.add_row("finished at", data.finished_at)
    return table


def channels_table(channels: dict[str, ChannelConfig]) -> Table:
    """Channels as a table, secrets masked."""
    table = Table("channel", "type", "settings")
    for channel_id, channel in channels.items():
        shown = channel.model_dump(exclude={"id", "type"}, exclude_none=True)
        settings = ", ".join(
            f"{k}={'****' if 'Secret' in type(v).__name__ else redact_url(str(v))}"
            for k, v in shown.items()
        )
        table.add_row(Text(channel_id), str(channel.type), Text(settings))
    return table


def snippets_table(from_file: dict[str, str], live: dict[str, str]) -> Table:
    """Snippets with their source; a run-time snippet hides the file's of the same name."""
    table = Table("snippet", "source", "text")
    for name in sorted(from_file.keys() | live.keys()):
        source = "redis" if name in live else "file"
        table.add_row(Text(f"/{name}"), source, Text(live.get(name, from_file.get(name, ""))))
    return table


def registrations_table(found: list[Registration]) -> Table:
    """Each channel's webhook URL and where to register it (docs/webhooks.md)."""
    table = Table("channel", "type", "webhook URL", "register it at")
    for row in found:
        table.add_row(Text(row.channel_id), row.channel_type, Text(row.url or "-"), row.where)
    return table
