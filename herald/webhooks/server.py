"""Running the webhook server, and what to register with each provider."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

import uvicorn

from herald.config import ChannelConfig, ChannelType, Settings, load_channels
from herald.contract.names import WEBHOOK_PATH
from herald.store.connection import redis_client, resolve_urls
from herald.webhooks.app import create_app
from herald.webhooks.parse import READERS

log = logging.getLogger("herald.webhooks")

#: Where each provider takes the URL, and what it must be given besides
#: (docs/webhooks.md#what-to-register-per-provider).
REGISTER: Mapping[ChannelType, str] = {
    ChannelType.WHATSAPP: "Meta app > WhatsApp > Configuration: callback URL, verify_token;"
    " subscribe to messages",
    ChannelType.MESSENGER: "Meta app > Messenger > Webhooks: callback URL, verify_token;"
    " subscribe to messages, message_deliveries, message_reads",
    ChannelType.INSTAGRAM: "Meta app > Instagram > Webhooks: callback URL, verify_token;"
    " subscribe to messages, messaging_seen",
    ChannelType.TELEGRAM: "setWebhook url=<URL> secret_token=<webhook_secret>",
    ChannelType.TWILIO_SMS: "the number's 'A message comes in' webhook (HTTP POST);"
    " status callbacks are asked for on each send",
    ChannelType.LINE: "LINE Developers console > Messaging API > Webhook URL; use webhook on",
    ChannelType.VIBER: "set_webhook url=<URL> with event_types delivered, seen, failed",
    ChannelType.SENDGRID: "Settings > Mail Settings > Event Webhook: HTTP POST URL, signed"
    " events on (its public key is event_public_key); delivered, open, bounce, dropped",
    ChannelType.CUSTOM: "the receiving system posts message.received and message.status"
    " there, as Standard Webhooks calls signed with secret",
}


@dataclass(frozen=True)
class Registration:
    """One channel's webhook: the URL to give its provider (None: it has none)."""

    channel_id: str
    channel_type: str
    url: str | None
    where: str


def registrations(settings: Settings, channels: Mapping[str, ChannelConfig]) -> list[Registration]:
    """What to register for each channel: its URL under ``HERALD_WEBHOOKS_PUBLIC_URL``, else
    under the address the server binds."""
    base = settings.webhooks_public_url or f"http://{settings.webhooks_bind}"
    found = []
    for channel_id, channel in channels.items():
        kind = ChannelType(channel.type)
        if kind not in READERS:
            found.append(
                Registration(channel_id, kind, None, "no webhook (SMTP: bounces come as mail)")
            )
            continue
        path = WEBHOOK_PATH.format(channel_id=quote(channel_id, safe=""))
        found.append(Registration(channel_id, kind, base.rstrip("/") + path, REGISTER[kind]))
    return found


def serve(settings: Settings, *, log_level: str = "info") -> None:
    """Serve the webhooks of the channels file at ``HERALD_WEBHOOKS_BIND`` until stopped."""
    channels = load_channels(settings.channels_file)
    client = redis_client(resolve_urls(settings).redis, max_connections=64)
    host, _, port = settings.webhooks_bind.rpartition(":")
    app = create_app(settings, channels, client)
    config = uvicorn.Config(
        app,
        host=host.strip("[]") or "127.0.0.1",
        port=int(port),
        log_level=log_level,
        # The access log prints query strings, and Meta's handshake carries the verify token.
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=5,
    )
    log.info("webhooks for %d channel(s) at %s", len(channels), settings.webhooks_bind)
    try:
        uvicorn.Server(config).run()
    finally:
        client.close()
