"""SMTP adapter: one email per message over a real SMTP session (aiosmtplib).

The worker runs sends in threads (or greenlets), and aiosmtplib is asyncio: each
:meth:`SmtpAdapter.send_part` runs its whole session with :func:`asyncio.run`, a private event
loop in the calling thread, so no loop is shared between threads and nothing outlives the
send. A session is connect (TLS, or STARTTLS when required), EHLO, AUTH when a username is
set, the server's ``SIZE`` checked, then MAIL, RCPT and DATA. Replies map to Herald's codes
by RFC 5321 reply code (docs/channels/email_smtp.md#errors-and-retries): 4yz transient, 5yz
permanent.

In doubt: an explicit 4yz reply (even after DATA) means the server did not take the message,
so it is not in doubt; a timeout or a lost connection once DATA began is, as the server may
have queued the message before the reply was lost.

Deadline: aiosmtplib's timeouts are per command, so a part (its attachment downloads and the
whole session) has one overall deadline (``deadline_s``, a third of the job's lease), past
which the send is ``provider_unavailable`` (in doubt once DATA began).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import socket
import time
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage as MimeMessage
from email.utils import formatdate, parseaddr
from typing import ClassVar

import aiosmtplib

from herald.adapters.base import Adapter, Outbound, Part
from herald.adapters.email.attachments import File, fetch_attachments
from herald.adapters.email.message import Email, compose
from herald.adapters.masking import MaskedCause, smtp_auth
from herald.config import ChannelType, SmtpChannel
from herald.contract.errors import (
    AuthFailed,
    InvalidContent,
    PermanentError,
    ProviderUnavailable,
    RateLimited,
    RecipientUnavailable,
    SendError,
    TransientError,
)
from herald.contract.job import CustomPayload

WHAT = "smtp"
#: CRLF line ends, and 7-bit bodies (quoted-printable or base64), so no 8BITMIME is needed.
MIME_POLICY = policy.SMTP.clone(cte_type="7bit")
# No controls either (NUL and DEL are not \s): an address goes into RCPT and the To: header.
_ATOM = r"[^@\s<>()\[\],;:\"\x00-\x1f\x7f]+"
_ADDRESS = re.compile(rf"^{_ATOM}@{_ATOM}$")

#: 5yz replies (permanent); any other 5yz is invalid_content.
PERMANENT_REPLIES: dict[int, type[PermanentError]] = {
    530: AuthFailed,
    535: AuthFailed,
    550: RecipientUnavailable,
    551: RecipientUnavailable,
    553: RecipientUnavailable,
    552: InvalidContent,
    554: InvalidContent,
    555: InvalidContent,
}
#: 4yz replies (transient); any other 4yz (421, 450, 451, 454, ...) is provider_unavailable.
TRANSIENT_REPLIES: dict[int, type[TransientError]] = {452: RateLimited}


@functools.cache
def local_hostname() -> str:
    """The name Herald gives in EHLO (looked up once per process)."""
    return socket.getfqdn()


def mime(email: Email, files: list[File]) -> bytes:
    """The RFC 5322 message: text (and HTML alternative), attachments, threading headers."""
    msg = MimeMessage(policy=MIME_POLICY)
    msg["From"] = email.sender
    msg["To"] = email.recipient
    msg["Subject"] = email.subject
    msg["Date"] = formatdate(usegmt=True)
    for name, value in email.thread_headers().items():
        msg[name] = value
    msg.set_content(email.text)
    if email.html is not None:
        msg.add_alternative(email.html, subtype="html")
    for file in files:
        maintype, _, subtype = file.content_type.partition("/")
        if maintype in ("multipart", "message") or not subtype:
            maintype, subtype = "application", "octet-stream"
        msg.add_attachment(file.data, maintype=maintype, subtype=subtype, filename=file.filename)
    return msg.as_bytes()


@dataclass
class _Phase:
    """How far a session got: the command being run."""

    phase: str = "connect"


class SmtpAdapter(Adapter[SmtpChannel, Email]):
    """Sends emails (and default texts and media, as email) through an SMTP server."""

    channel_type = ChannelType.EMAIL_SMTP
    takes_files = True
    config_type = SmtpChannel
    connect_timeout_s: ClassVar[float] = 10.0
    #: Per SMTP command (DATA included).
    timeout_s: ClassVar[float] = 60.0

    def setup(self, channel: SmtpChannel) -> None:
        self._envelope_from = parseaddr(channel.from_address)[1] or channel.from_address

    def secrets(self) -> list[str]:
        # AUTH PLAIN and LOGIN send the password in base64, and a server's 535 may quote
        # the argument it refused.
        user, password = self.channel.username, self.channel.password
        if not (user and password):
            return super().secrets()
        return [*super().secrets(), *smtp_auth(user, password.get_secret_value())]

    def plan(self, out: Outbound) -> list[Part[Email]]:
        if isinstance(out.message, CustomPayload):
            raise InvalidContent("email_smtp cannot send custom_payload messages")
        if not out.recipient.isascii() or not _ADDRESS.match(out.recipient):
            raise RecipientUnavailable(f"{WHAT}: the recipient is not an email address")
        email = compose(
            out.message,
            job_id=out.job_id,
            workflow_id=out.workflow.workflow_id if out.workflow else None,
            contact_id=out.contact_id,
            sender=self.channel.from_address,
            recipient=out.recipient,
            what="email_smtp",
        )
        return [Part(0, email)]

    def send_part(self, out: Outbound, part: Part[Email]) -> list[str]:
        email = part.payload
        # One deadline for the part: time spent downloading is time the session no longer has.
        deadline = None if self.deadline_s is None else time.monotonic() + self.deadline_s
        files = fetch_attachments(
            email.attachments,
            what="email_smtp",
            allow_networks=self.fetch_allow_networks,
            deadline_s=self.deadline_s,
            library=self.library,
            files=out.files,
        )
        asyncio.run(self._session(email.recipient, mime(email, files), deadline))
        return [email.message_id]

    def _client(self) -> aiosmtplib.SMTP:
        security = self.channel.security
        return aiosmtplib.SMTP(
            hostname=self.channel.host,
            port=self.channel.port,
            use_tls=security == "tls",
            start_tls=security == "starttls",
            timeout=self.timeout_s,
            local_hostname=local_hostname(),
        )

    async def _session(self, recipient: str, data: bytes, deadline: float | None) -> None:
        client = self._client()
        state = _Phase()
        timer = asyncio.timeout(None if deadline is None else deadline - time.monotonic())
        cause: BaseException | None = None
        try:
            async with timer:
                await self._converse(client, recipient, data, state)
        except aiosmtplib.SMTPResponseException as exc:
            refused = self._refused(exc, state.phase)
        except (aiosmtplib.SMTPException, OSError) as exc:  # TimeoutError is an OSError
            refused = self._late(state.phase) if timer.expired() else self._fault(exc, state.phase)
            cause = MaskedCause.of(exc, self.mask)
        else:
            return
        finally:
            client.close()
        # Raised outside the handler: the server's reply (in the message, masked) must not
        # ride along unmasked as the error's cause or context.
        raise refused from cause

    async def _converse(
        self, client: aiosmtplib.SMTP, recipient: str, data: bytes, state: _Phase
    ) -> None:
        """The session's commands, in order; ``state`` says how far it got."""
        await client.connect(timeout=self.connect_timeout_s)
        await client.ehlo()
        if self.channel.username:
            state.phase = "auth"
            password = self.channel.password
            await client.login(
                self.channel.username, password.get_secret_value() if password else ""
            )
        state.phase = "mail"
        options = self._size_options(client, len(data))
        await client.mail(self._envelope_from, options=options)
        state.phase = "rcpt"
        await client.rcpt(recipient)
        state.phase = "data"
        await client.data(data)
        state.phase = "quit"
        with contextlib.suppress(aiosmtplib.SMTPException, OSError):
            await client.quit()  # the message is accepted; a failed goodbye is no failure

    def _late(self, phase: str) -> SendError:
        # Once DATA began the server may have queued the message: as for a read timeout.
        return ProviderUnavailable(
            f"{WHAT} {phase}: no answer within the {self.deadline_s:g} s deadline for the session",
            in_doubt=phase == "data",
        )

    @staticmethod
    def _size_options(client: aiosmtplib.SMTP, size: int) -> list[str]:
        """``SIZE=n`` for MAIL when the server advertises SIZE; refuse what it cannot take."""
        if not client.supports_extension("size"):
            return []
        limit = client.esmtp_extensions.get("size", "").strip()
        if limit.isdigit() and int(limit) > 0 and size > int(limit):
            raise InvalidContent(
                f"{WHAT}: the message is {size} bytes; the server takes at most {limit} (SIZE)"
            )
        return [f"SIZE={size}"]

    def _refused(self, exc: aiosmtplib.SMTPResponseException, phase: str) -> SendError:
        text = self.mask.shown(" ".join(exc.message.split()))
        return reply_error(exc.code, f"{WHAT} {phase}: {exc.code} {text}", phase)

    def _fault(self, exc: BaseException, phase: str) -> SendError:
        if isinstance(exc, OSError | aiosmtplib.SMTPTimeoutError):
            # Connect refused/timed out: nothing sent. Once DATA began, the server may have it.
            return ProviderUnavailable(
                f"{WHAT} {phase}: no answer ({type(exc).__name__})", in_doubt=phase == "data"
            )
        # aiosmtplib's own refusals: no AUTH or STARTTLS offered, and the like.
        return AuthFailed(f"{WHAT} {phase}: {self.mask.shown(str(exc))}")


def reply_error(code: int, message: str, phase: str) -> SendError:
    """The Herald error for an SMTP reply code, given the session phase."""
    provider_code = str(code)
    if 500 <= code < 600:
        cls = PERMANENT_REPLIES.get(code, InvalidContent)
        if phase == "auth" or (phase == "mail" and cls is RecipientUnavailable):
            cls = AuthFailed  # the server refuses our login or our sender address
        return cls(message, provider_code=provider_code)
    if 400 <= code < 500:
        transient = TRANSIENT_REPLIES.get(code, ProviderUnavailable)
        return transient(message, provider_code=provider_code)
    # An unexpected success or intermediate code where the client wanted another.
    return ProviderUnavailable(message, provider_code=provider_code, in_doubt=phase == "data")
