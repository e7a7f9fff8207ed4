"""The one masking rule: every secret of a channel, in every form, becomes ****."""

from __future__ import annotations

import base64

from pydantic import SecretStr

from herald.adapters.custom import CustomAdapter
from herald.adapters.email.smtp import SmtpAdapter
from herald.adapters.http import ClientPool
from herald.adapters.masking import (
    MASK,
    MIN_SECRET,
    TEXT_MAX,
    Mask,
    MaskedCause,
    basic_auth,
    smtp_auth,
)
from herald.adapters.telegram import TelegramAdapter
from herald.adapters.twilio_sms import TwilioSmsAdapter
from herald.config import CustomChannel, SmtpChannel, TelegramChannel, TwilioSmsChannel
from tests.adapter_support import SHARED_SSL


def test_raw_and_url_encoded_forms_are_masked() -> None:
    mask = Mask.of(["a/b+c:d=e"])
    said = "raw a/b+c:d=e, path a/b%2Bc%3Ad%3De, query a%2Fb%2Bc%3Ad%3De"
    assert mask(said) == "raw ****, path ****, query ****"


def test_a_secret_that_contains_another_is_masked_whole() -> None:
    assert Mask.of(["abcd", "abcdefgh"])("key abcdefgh") == "key ****"


def test_values_too_short_to_be_secrets_are_left_alone() -> None:
    short = "x" * (MIN_SECRET - 1)
    assert Mask.of([short, ""])(f"say {short}") == f"say {short}"


def test_shown_text_is_masked_before_it_is_cut() -> None:
    secret = "0123456789"
    text = "a" * (TEXT_MAX - 3) + secret
    assert Mask.of([secret]).shown(text) == "a" * (TEXT_MAX - 3) + "***"


def test_the_adapter_collects_every_secret_of_its_channel_itself() -> None:
    key = base64.b64encode(b"a-webhook-key-for-the-masking-test").decode()
    hook = CustomChannel(
        id="h", type="custom", url="https://hooks.example/in", secret=SecretStr(f"whsec_{key}")
    )
    assert (
        CustomAdapter(hook, ClientPool(ssl_context=SHARED_SSL)).mask(f"whsec_{key} and {key}")
        == "**** and ****"
    )
    mail = SmtpChannel(
        id="m",
        type="email_smtp",
        host="smtp.example",
        from_address="a@example.com",
        password=SecretStr("the-smtp-password"),
    )
    assert (
        SmtpAdapter(mail, ClientPool(ssl_context=SHARED_SSL)).mask("535 the-smtp-password")
        == "535 ****"
    )
    unset = SmtpChannel(id="m", type="email_smtp", host="smtp.example", from_address="a@x.y")
    assert SmtpAdapter(unset, ClientPool(ssl_context=SHARED_SSL)).mask.hidden == ()


def test_json_escaped_and_lowercase_percent_forms_are_masked() -> None:
    mask = Mask.of(["a/b+c:d=e"])
    said = "json a\\/b+c:d=e, lower hex a%2fb%2bc%3ad%3de, path a/b%2bc%3ad%3de"
    assert mask(said) == "json ****, lower hex ****, path ****"


def test_http_basic_credentials_are_masked_padded_or_not() -> None:
    sent = base64.b64encode(b"AC123:the-auth-token").decode()
    assert sent.endswith("=")
    mask = Mask.of(basic_auth("AC123", "the-auth-token"))
    assert mask(f"Basic {sent} or {sent.rstrip('=')}") == "Basic **** or ****"


def test_smtp_auth_arguments_are_masked() -> None:
    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    mask = Mask.of(smtp_auth("herald", "pw-secret"))
    plain = [b"\0herald\0pw-secret", b"herald\0herald\0pw-secret", b"herald\0pw-secret"]
    login = [b"herald", b"pw-secret"]
    said = " ".join(b64(raw) for raw in plain + login)
    assert mask(said) == " ".join([MASK] * 5)


def test_masks_combine() -> None:
    both = Mask.of(["first-secret"]) | Mask.of(["second-secret"])
    assert both("first-secret second-secret") == "**** ****"


def test_a_masked_cause_keeps_the_type_and_hides_the_secret() -> None:
    original = ValueError("Illegal header value b'Bearer tok-secret\\n'")
    cause = MaskedCause.of(original, Mask.of(["tok-secret"]))
    assert str(cause) == "ValueError: Illegal header value b'Bearer ****\\n'"
    assert cause.__cause__ is None and cause.__context__ is None


def test_adapters_hide_the_credentials_they_derive() -> None:
    pool = ClientPool(ssl_context=SHARED_SSL)
    telegram = TelegramAdapter(
        TelegramChannel(id="t", type="telegram", bot_token=SecretStr("987654:AAH-secret-part")),
        pool,
    )
    assert telegram.mask("bot 987654, key AAH-secret-part") == "bot ****, key ****"
    twilio = TwilioSmsAdapter(
        TwilioSmsChannel(
            id="s",
            type="twilio_sms",
            account_sid="AC123",
            auth_token=SecretStr("the-auth-token"),
            from_number="+15005550006",
        ),
        pool,
    )
    basic = base64.b64encode(b"AC123:the-auth-token").decode()
    assert twilio.mask(f"Basic {basic}") == "Basic ****"
    # The pool masks what it is raised from with every adapter's secrets.
    assert pool.mask(f"AAH-secret-part {basic}") == "**** ****"
