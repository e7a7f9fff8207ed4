"""The one masking rule: every secret of a channel, in every form, becomes ****."""

from __future__ import annotations

import base64

from pydantic import SecretStr

from herald.adapters.custom import CustomAdapter
from herald.adapters.email.smtp import SmtpAdapter
from herald.adapters.http import ClientPool
from herald.adapters.masking import MIN_SECRET, TEXT_MAX, Mask
from herald.config import CustomChannel, SmtpChannel
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
