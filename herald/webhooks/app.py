"""``herald webhooks``: the ASGI app providers call at ``/webhooks/<channel_id>``.

Starlette on uvicorn: a small, maintained ASGI stack (Starlette's routing and requests,
uvicorn's HTTP/1.1 server), with the raw body in hand before anything parses it, which
every provider's signature needs. Each call: the body, read up to :data:`MAX_BODY_BYTES`
(413 past it); the provider's check (401/403, nothing recorded); the provider's payload
(400 when it is not one); then :class:`~herald.webhooks.record.Recorder` in a worker
thread (one or two Redis round trips) and 2xx. A Redis that does not answer is 503, so the
provider delivers the call again later. Logs carry the channel, the answer and counts:
never a body, a header or a query (Meta's handshake carries the verify token there).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime

import redis
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from herald.config import (
    ChannelConfig,
    InstagramChannel,
    MessengerChannel,
    Settings,
    TwilioSmsChannel,
    WhatsAppChannel,
)
from herald.contract.errors import MalformedWebhook, WebhookRefused, WebhookTooLarge
from herald.contract.names import WEBHOOK_PATH
from herald.files.library import Library, library_from_settings
from herald.webhooks.files import FileServer
from herald.webhooks.model import Call
from herald.webhooks.parse import READERS, parse
from herald.webhooks.record import Recorder
from herald.webhooks.verify import meta_handshake, verify

log = logging.getLogger("herald.webhooks")

#: The largest body taken (1 MiB); a larger one is answered 413 unread.
MAX_BODY_BYTES = 1024 * 1024
#: Twilio's answer to an inbound message that asks for no reply: empty TwiML.
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request's body, or :class:`WebhookTooLarge` as soon as it passes ``limit``."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise WebhookTooLarge(f"the body is over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise WebhookTooLarge(f"the body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class Intake:
    """Verifies, parses and records the calls of every configured channel."""

    def __init__(
        self, settings: Settings, channels: Mapping[str, ChannelConfig], recorder: Recorder
    ) -> None:
        self.settings = settings
        self.channels = channels
        self.recorder = recorder

    async def handle(self, request: Request) -> Response:
        """Answer one call of a provider."""
        channel_id = request.path_params["channel_id"]
        channel = self.channels.get(channel_id)
        if channel is None or channel.type not in READERS:
            return JSONResponse({"error": "no channel with webhooks here"}, status_code=404)
        try:
            if request.method == "GET":
                return self._handshake(channel, request)
            return await self._post(channel, request)
        except WebhookRefused as exc:
            log.warning("webhook %s: %d %s", channel.id, exc.status, exc)
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        except redis.RedisError as exc:
            log.error("webhook %s: Redis unavailable (%s); answered 503", channel.id, type(exc))
            return JSONResponse({"error": "state store unavailable"}, status_code=503)
        except Exception:  # a bug of ours must not take the server down
            log.exception("webhook %s: unexpected error; answered 500", channel.id)
            return JSONResponse({"error": "internal error"}, status_code=500)

    def _handshake(self, channel: ChannelConfig, request: Request) -> Response:
        """Meta's subscription check: the challenge back when the verify token is ours."""
        if not isinstance(channel, WhatsAppChannel | MessengerChannel | InstagramChannel):
            return JSONResponse({"error": "POST only"}, status_code=405)
        challenge = meta_handshake(channel, request.url.query)
        log.info("webhook %s: subscription check answered", channel.id)
        return PlainTextResponse(challenge)

    async def _post(self, channel: ChannelConfig, request: Request) -> Response:
        call = Call(
            method=request.method,
            url=str(request.url),
            path=request.url.path,
            query=request.url.query,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=await read_body(request),
            received=datetime.now(UTC),
        )
        verify(channel, call, public_url=self.settings.webhooks_public_url)
        try:
            items = parse(channel, call, self.channels)
        except (RecursionError, ValueError) as exc:  # absurd nesting, unparseable numbers
            raise MalformedWebhook(f"unreadable payload ({type(exc).__name__})") from None
        done = await run_in_threadpool(self.recorder.record, items, call.received)
        log.info(
            "webhook %s: %d inbound (%d repeated, %d of unknown contacts), %d statuses"
            " (%d waiting for their send, %d not news)",
            channel.id,
            done.inbound,
            done.duplicates,
            len(done.unknown_contacts),
            done.statuses,
            done.waiting,
            done.stale,
        )
        if isinstance(channel, TwilioSmsChannel):
            return Response(EMPTY_TWIML, media_type="text/xml")
        return JSONResponse({"ok": True})


def create_app(
    settings: Settings,
    channels: Mapping[str, ChannelConfig],
    client: redis.Redis,
    library: Library | None = None,
) -> Starlette:
    """The webhook server's app over ``channels``, recording on ``client``, and serving
    signed links of the file library (``/files/<id>``; the settings' library by default)."""
    intake = Intake(settings, channels, Recorder(client, settings))
    files = FileServer(library or library_from_settings(settings, max_connections=16))
    path = WEBHOOK_PATH.replace("{channel_id}", "{channel_id:str}")
    return Starlette(
        routes=[
            Route(path, intake.handle, methods=["GET", "POST"]),
            Route("/files/{file_id:str}", files.handle, methods=["GET", "HEAD"]),
        ]
    )
