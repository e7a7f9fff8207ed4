"""What every adapter does alike, one parametrized test per behaviour over every channel type:
a refused connection, a read timeout, a wrong credential, a secret echoed back (raw, encoded,
or as the credential the adapter derives from it), and the deadline each gets."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

import pytest
from pydantic import SecretStr

from herald.adapters import ADAPTERS, build_adapters
from herald.adapters.base import AnyAdapter
from herald.adapters.http import ClientPool
from herald.adapters.masking import MASK
from herald.config import (
    ChannelType,
    CustomChannel,
    InstagramChannel,
    LineChannel,
    MessengerChannel,
    SendGridChannel,
    Settings,
    SmtpChannel,
    TelegramChannel,
    TwilioSmsChannel,
    ViberChannel,
    WhatsAppChannel,
)
from herald.contract.errors import AuthFailed, ProviderUnavailable
from herald.testing.sandbox import DEFAULT_SECRETS, Sandbox
from tests import adapter_support as support
from tests.adapter_support import SHARED_SSL, closed_port, text
from tests.smtp_server import SmtpServer

SMTP_PASSWORD = "smtp-test-password"
OTHER_WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"not-the-receiver's-key-32-bytes!").decode()


@dataclass(frozen=True)
class Case:
    """How to build one channel type's adapter, and what its provider answers."""

    #: The channel config, given the provider's URL and the credential.
    make: Callable[[str, str], Any]
    recipient: str
    #: The sandbox's provider name; None for SMTP (a real SMTP server).
    provider: str | None
    #: (status, body) of a refusal whose text is the given string.
    refusal: Callable[[str], tuple[int, Any]]
    #: provider_code and message start of a refused credential.
    wrong: tuple[str, str]
    #: How its messages name the call when no answer came.
    what: str

    @property
    def secret(self) -> str:
        """The credential the provider accepts."""
        return SMTP_PASSWORD if self.provider is None else DEFAULT_SECRETS[self.provider]

    def adapter(self, url: str, secret: str | None = None, **pool: Any) -> AnyAdapter:
        channel = self.make(url, self.secret if secret is None else secret)
        return ADAPTERS[ChannelType(channel.type)](
            channel, ClientPool(ssl_context=SHARED_SSL, **pool)
        )


def graph(text: str) -> tuple[int, Any]:
    return 400, {"error": {"message": text, "type": "OAuthException", "code": 100}}


CASES: dict[ChannelType, Case] = {
    ChannelType.TELEGRAM: Case(
        lambda url, s: TelegramChannel(
            id="tg", type="telegram", bot_token=SecretStr(s), base_url=url
        ),
        "4242",
        "telegram",
        lambda t: (400, {"ok": False, "error_code": 400, "description": t}),
        ("401", "telegram sendMessage: Unauthorized"),
        "telegram sendMessage",
    ),
    ChannelType.WHATSAPP: Case(
        lambda url, s: WhatsAppChannel(
            id="wa",
            type="whatsapp",
            phone_number_id="106540352242922",
            access_token=SecretStr(s),
            base_url=url,
        ),
        "+351911111111",
        "whatsapp",
        graph,
        ("190", "whatsapp: "),
        "whatsapp",
    ),
    ChannelType.MESSENGER: Case(
        lambda url, s: MessengerChannel(
            id="fb",
            type="messenger",
            page_id="1100223344",
            page_access_token=SecretStr(s),
            base_url=url,
        ),
        "6754123456789012",
        "messenger",
        graph,
        ("190", "messenger: "),
        "messenger",
    ),
    ChannelType.INSTAGRAM: Case(
        lambda url, s: InstagramChannel(
            id="ig",
            type="instagram",
            page_id="17841400000000001",
            access_token=SecretStr(s),
            base_url=url,
        ),
        "6754123456789012",
        "instagram",
        graph,
        ("190", "instagram: "),
        "instagram",
    ),
    ChannelType.CUSTOM: Case(
        lambda url, s: CustomChannel(
            id="hook", type="custom", url=f"{url}/webhook/herald", secret=SecretStr(s)
        ),
        "user-7",
        "custom",
        lambda t: (400, {"error": t}),
        ("401", "custom webhook: HTTP 401: invalid signature"),
        "custom webhook",
    ),
    ChannelType.TWILIO_SMS: Case(
        lambda url, s: TwilioSmsChannel(
            id="sms",
            type="twilio_sms",
            account_sid="AC" + "0" * 31 + "1",
            auth_token=SecretStr(s),
            from_number="+15005550006",
            base_url=url,
        ),
        "+351911111111",
        "twilio_sms",
        lambda t: (400, {"code": 21211, "message": t, "status": 400}),
        ("20003", "twilio_sms: Authenticate"),
        "twilio_sms",
    ),
    ChannelType.LINE: Case(
        lambda url, s: LineChannel(
            id="line", type="line", channel_access_token=SecretStr(s), base_url=url
        ),
        "U4af4980629a1b2c3d4e5f60718293a4b",
        "line",
        lambda t: (400, {"message": t}),
        ("401", "line push: Authentication failed."),
        "line push",
    ),
    ChannelType.VIBER: Case(
        lambda url, s: ViberChannel(
            id="viber", type="viber", auth_token=SecretStr(s), sender_name="Herald", base_url=url
        ),
        "01234567890A=",
        "viber",
        lambda t: (200, {"status": 3, "status_message": t}),
        ("2", "viber send_message: status 2 invalidAuthToken"),
        "viber send_message",
    ),
    ChannelType.SENDGRID: Case(
        lambda url, s: SendGridChannel(
            id="sg",
            type="sendgrid",
            api_key=SecretStr(s),
            from_address="a@herald.test",
            base_url=url,
        ),
        "ana@example.com",
        "sendgrid",
        lambda t: (400, {"errors": [{"message": t, "field": None}]}),
        ("401", "sendgrid mail send: HTTP 401: The provided authorization grant is invalid"),
        "sendgrid mail send",
    ),
    ChannelType.EMAIL_SMTP: Case(
        lambda url, s: SmtpChannel(
            id="mail",
            type="email_smtp",
            host="127.0.0.1",
            port=urlsplit(url).port or 25,
            username="herald",
            password=SecretStr(s),
            from_address="shop@herald.test",
            security="none",
        ),
        "ana@example.com",
        None,
        lambda t: (550, t),
        ("535", "smtp auth: 535 "),
        "smtp connect",
    ),
}
HTTP = [kind for kind, case in CASES.items() if case.provider is not None]


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as box:
        yield box


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer(password=SMTP_PASSWORD) as server:
        yield server


def provider_url(case: Case, request: pytest.FixtureRequest) -> str:
    """Where the case's provider listens: the sandbox, or the SMTP server."""
    if case.provider is None:
        server: SmtpServer = request.getfixturevalue("smtp")
        return f"smtp://127.0.0.1:{server.port}"
    box: Sandbox = request.getfixturevalue("sandbox")
    return box.url


def out(case: Case) -> Any:
    return support.outbound(text("hi"), channel_id="c", recipient=case.recipient)


def test_every_channel_type_has_a_case() -> None:
    assert set(CASES) == set(ADAPTERS)


@pytest.mark.parametrize("kind", sorted(CASES))
def test_a_refused_connection_is_provider_unavailable_not_in_doubt(kind: ChannelType) -> None:
    case = CASES[kind]
    with closing(case.adapter(f"http://127.0.0.1:{closed_port()}")) as adapter:
        exc = support.fail(adapter, out(case), secrets=[case.secret])
    assert type(exc) is ProviderUnavailable
    assert (exc.in_doubt, exc.provider_code) == (False, None)
    assert exc.message.startswith(f"{case.what}: ")


@pytest.mark.parametrize("kind", sorted(HTTP))
def test_a_read_timeout_is_provider_unavailable_in_doubt(
    kind: ChannelType, sandbox: Sandbox
) -> None:
    case = CASES[kind]
    sandbox.delay(2)
    with closing(case.adapter(sandbox.url, timeout=0.2)) as adapter:
        exc = support.fail(adapter, out(case), secrets=[case.secret])
    assert type(exc) is ProviderUnavailable
    assert exc.in_doubt
    assert exc.message.startswith(f"{case.what}: no answer (")


@pytest.mark.parametrize("kind", sorted(CASES))
def test_a_wrong_credential_is_auth_failed_and_never_shown(
    kind: ChannelType, request: pytest.FixtureRequest
) -> None:
    case = CASES[kind]
    wrong = OTHER_WEBHOOK_SECRET if kind is ChannelType.CUSTOM else "wrong-credential-0123"
    url = provider_url(case, request)
    with closing(case.adapter(url, wrong)) as adapter:
        exc = support.fail(adapter, out(case), secrets=[wrong, wrong.removeprefix("whsec_")])
    assert type(exc) is AuthFailed
    provider_code, message = case.wrong
    assert exc.provider_code == provider_code
    assert exc.message.startswith(message)


@pytest.mark.parametrize("kind", sorted(CASES))
def test_an_echoed_secret_is_masked_in_every_form(
    kind: ChannelType, request: pytest.FixtureRequest
) -> None:
    case = CASES[kind]
    # The custom channel's receiver may also echo the key without its whsec_ prefix.
    secret = case.secret.removeprefix("whsec_")
    said = f"bad {secret}, {quote(secret, safe='')}, {quote_plus(secret)}"
    status, body = case.refusal(said)
    url = provider_url(case, request)
    if case.provider is None:
        server: SmtpServer = request.getfixturevalue("smtp")
        server.fail_next(status, body, at="rcpt")
    else:
        box: Sandbox = request.getfixturevalue("sandbox")
        box.fail_next(case.provider, status, body)
    with closing(case.adapter(url)) as adapter:
        exc = support.fail(
            adapter,
            out(case),
            secrets=[case.secret, quote(secret, safe=""), quote_plus(secret)],
            send=support.send_one,
        )
    assert f"bad {MASK}, {MASK}, {MASK}" in exc.message


def _b64(raw: str) -> str:
    return base64.b64encode(raw.encode()).decode()


#: What each adapter sends derived from its credential, as a provider (or a proxy, or an SMTP
#: server quoting the AUTH argument) might echo it back.
DERIVED: dict[ChannelType, Callable[[str], list[str]]] = {
    ChannelType.TELEGRAM: lambda s: [f"bot {s.partition(':')[0]}", f"key {s.partition(':')[2]}"],
    ChannelType.WHATSAPP: lambda s: [f"Bearer {s}"],
    ChannelType.MESSENGER: lambda s: [f"access_token={quote(s, safe='')}"],
    ChannelType.INSTAGRAM: lambda s: [f"Bearer {s}"],
    ChannelType.CUSTOM: lambda s: [s.removeprefix("whsec_")],
    ChannelType.TWILIO_SMS: lambda s: [f"Basic {_b64('AC' + '0' * 31 + '1:' + s)}"],
    ChannelType.LINE: lambda s: [f"Bearer {s}"],
    ChannelType.VIBER: lambda s: [f"X-Viber-Auth-Token: {s}"],
    ChannelType.SENDGRID: lambda s: [f"Bearer {s}"],
    ChannelType.EMAIL_SMTP: lambda s: [
        f"AUTH PLAIN {_b64(chr(0) + 'herald' + chr(0) + s)}",
        f"AUTH PLAIN {_b64('herald' + chr(0) + s)}",
        f"AUTH LOGIN {_b64(s)}",
    ],
}


def test_every_channel_type_says_what_it_derives() -> None:
    assert set(DERIVED) == set(ADAPTERS)


@pytest.mark.parametrize("kind", sorted(CASES))
def test_an_echoed_derived_credential_is_masked(
    kind: ChannelType, request: pytest.FixtureRequest
) -> None:
    case = CASES[kind]
    forms = DERIVED[kind](case.secret)
    said = " | ".join(forms)
    status, body = case.refusal(said)
    url = provider_url(case, request)
    if case.provider is None:
        server: SmtpServer = request.getfixturevalue("smtp")
        server.fail_next(status, body, at="rcpt")
    else:
        box: Sandbox = request.getfixturevalue("sandbox")
        box.fail_next(case.provider, status, body)
    with closing(case.adapter(url)) as adapter:
        exc = support.fail(adapter, out(case), send=support.send_one)
    # Each form keeps its label ("Bearer", "AUTH PLAIN") and loses what follows it.
    for form in forms:
        label, _, shown = form.rpartition(" ")
        support.assert_hidden(exc, shown)
        assert f"{label} {MASK}".strip() in exc.message


def test_build_adapters_gives_every_provider_call_a_deadline_under_the_lease() -> None:
    settings = Settings(lease_s=60, channels_file="unused.toml")
    channels = {
        str(kind): case.make("http://127.0.0.1:9", case.secret) for kind, case in CASES.items()
    }
    adapters = build_adapters(channels, settings)
    try:
        assert {a.http.deadline_s for a in adapters.values()} == {20.0}
        assert {a.deadline_s for a in adapters.values()} == {20.0}
    finally:
        for adapter in adapters.values():
            adapter.close()
