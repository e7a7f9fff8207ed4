"""Rich tables of outcome events and channels, for the CLI and the demo."""

from __future__ import annotations

from rich.table import Table

from herald.config import ChannelConfig, redact_url
from herald.contract.events import OutcomeEvent


def events_table(events: list[OutcomeEvent]) -> Table:
    """Outcome events as a rich table (the error's code; its message with ``--json``)."""
    table = Table("event", "job_id", "channel", "next", "error", "provider ids", "attempts")
    for event in events:
        data = event.data
        style = "green" if data.outcome == "sent" else "red"
        table.add_row(
            f"[{style}]{event.event}[/{style}]",
            event.job_id or "∅",
            data.channel_id or "-",
            data.next,
            data.error.code if data.error else "",
            ", ".join(data.provider_message_ids),
            str(data.attempts),
        )
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
        table.add_row(channel_id, str(channel.type), settings)
    return table


def snippets_table(from_file: dict[str, str], live: dict[str, str]) -> Table:
    """Snippets with their source; a run-time snippet hides the file's of the same name."""
    table = Table("snippet", "source", "text")
    for name in sorted(from_file.keys() | live.keys()):
        source = "redis" if name in live else "file"
        table.add_row(f"/{name}", source, live.get(name, from_file.get(name, "")))
    return table
