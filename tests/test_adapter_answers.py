"""The one answer classifier: table first, else the status rule; one in-doubt rule."""

from __future__ import annotations

import httpx
import pytest

from herald.adapters.answers import Answer, classify, json_object, retry_after, table
from herald.adapters.masking import TEXT_MAX, Mask
from herald.contract.errors import (
    AuthFailed,
    InvalidContent,
    ProviderUnavailable,
    QuotaExceeded,
    RateLimited,
    RecipientUnavailable,
    SendError,
    WindowClosed,
)

NO_MASK = Mask()
ERRORS = table(
    (WindowClosed, [(10, 2018278)]),
    (AuthFailed, [10]),
    (RecipientUnavailable, ["chat not found"]),
    (ProviderUnavailable, [2]),
    (RateLimited, [4]),
    (QuotaExceeded, [131048]),
)


@pytest.mark.parametrize(
    ("answer", "error", "provider_code", "in_doubt"),
    [
        # The table, most specific key first; a matched pair reports "code/subcode".
        (Answer(400, ((10, 2018278), 10), "10"), WindowClosed, "10/2018278", False),
        (Answer(400, ((10, 1234), 10), "10"), AuthFailed, "10", False),
        (Answer(400, ("chat not found", 400), "400"), RecipientUnavailable, "400", False),
        (Answer(400, (131048,), "131048"), QuotaExceeded, "131048", False),
        # A transient code is a definite refusal below 500, and may have been sent on a 5xx.
        (Answer(400, (2,), "2"), ProviderUnavailable, "2", False),
        (Answer(503, (2,), "2"), ProviderUnavailable, "2", True),
        # No table entry: the status rule, the provider's code still reported.
        (Answer(401), AuthFailed, "401", False),
        (Answer(403, (99,), "99"), AuthFailed, "99", False),
        (Answer(429), RateLimited, "429", False),
        (Answer(404), InvalidContent, "404", False),
        (Answer(409, (99,), "99"), InvalidContent, "99", False),
        (Answer(500), ProviderUnavailable, "500", True),
        (Answer(502, (99,), "99"), ProviderUnavailable, "99", True),
        # A 2xx without what success needs: in doubt unless the provider gave its own code.
        (Answer(200), ProviderUnavailable, "200", True),
        (Answer(200, (99,), "99"), ProviderUnavailable, "99", False),
        # 1xx and 3xx were not processed (redirects are not followed).
        (Answer(302), ProviderUnavailable, "302", False),
        (Answer(101), ProviderUnavailable, "101", False),
    ],
)
def test_the_table_then_the_status_rule(
    answer: Answer, error: type[SendError], provider_code: str, in_doubt: bool
) -> None:
    exc = classify(answer, ERRORS, "x", mask=NO_MASK)
    assert (type(exc), exc.provider_code, exc.in_doubt) == (error, provider_code, in_doubt)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (Answer(429, retry_after=7), 7),
        (Answer(400, (4,), "4", retry_after=7), 7),
        (Answer(500, retry_after=7), None),
        (Answer(400, (131048,), "131048", retry_after=7), None),  # a quota: waiting cannot help
    ],
)
def test_only_rate_limited_carries_the_wait_hint(answer: Answer, expected: float | None) -> None:
    assert classify(answer, ERRORS, "x", mask=NO_MASK).retry_after == expected


def test_the_message_names_the_call_and_is_masked_then_cut() -> None:
    secret = "s3cr3t-token"
    # The secret straddles the cut: masking first leaves no piece of it.
    text = "x" * (TEXT_MAX - 5) + secret + "y" * 50
    exc = classify(Answer(400, text=text), {}, "line push", mask=Mask.of([secret]))
    assert exc.message == "line push: " + ("x" * (TEXT_MAX - 5) + "****" + "y" * 50)[:TEXT_MAX]
    assert classify(Answer(502), {}, "viber", mask=NO_MASK).message == "viber: HTTP 502"


def test_a_key_in_two_rows_is_refused() -> None:
    with pytest.raises(ValueError, match="mapped twice"):
        table((AuthFailed, [10]), (InvalidContent, [10]))


def test_reading_bodies_and_wait_hints() -> None:
    assert json_object(httpx.Response(200, json={"a": 1})) == {"a": 1}
    assert json_object(httpx.Response(200, json=[1])) == {}
    assert json_object(httpx.Response(200, text="not json")) == {}
    assert retry_after(httpx.Response(429, headers={"Retry-After": "7"})) == 7
    assert retry_after(httpx.Response(429, headers={"Retry-After": "-3"})) == 0
    # An HTTP date is not read: no hint rather than a wrong one.
    date = "Wed, 21 Oct 2026 07:28:00 GMT"
    assert retry_after(httpx.Response(429, headers={"Retry-After": date})) is None
