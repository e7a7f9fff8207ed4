"""What the adapter tests share: a job to send, sending it, failing without leaking secrets,
and the rows of an adapter's error table.

Each test module binds its channel's defaults once, e.g.
``outbound = partial(support.outbound, channel_id="tg", recipient="4242")`` and
``fail = partial(support.fail, secrets=[TOKEN])``.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from ipaddress import ip_network
from typing import Any, TypeVar

import httpx
import pytest

from herald.adapters.base import Adapter, Outbound
from herald.contract.errors import SendError
from herald.contract.job import TextMessage, Workflow
from herald.testing.sandbox import Sandbox

#: Where the tests' file servers are: fetches from it are allowed (not public otherwise).
LOOPBACK = (ip_network("127.0.0.1/32"),)

#: One SSL context for every test's client pools (building one loads the CA bundle, ~40 ms).
SHARED_SSL = httpx.create_ssl_context()

#: A ZWJ family and a toned thumb: one character to a reader, several code points to Python.
SHORT_FAMILY = "👩‍👩‍👧‍👦 hi 👍🏽"
#: The same with a ZWJ heart on fire, for the chat channels.
FAMILY = SHORT_FAMILY + " ❤️‍🔥"

A = TypeVar("A", bound=Adapter)


def sandbox_fixture(**secrets: str) -> Any:
    """A ``sandbox`` fixture: a running sandbox that accepts ``secrets`` (provider to credential).

    Bind it to the fixture's name in the test module: ``sandbox = sandbox_fixture(line=TOKEN)``.
    """

    @pytest.fixture
    def sandbox() -> Iterator[Sandbox]:
        with Sandbox(secrets=secrets) as box:
            yield box

    return sandbox


def adapter_fixture(make: Callable[[str], A]) -> Any:
    """An adapter fixture: ``make(sandbox.url)``, closed after the test."""

    @pytest.fixture
    def adapter(sandbox: Sandbox) -> Iterator[A]:
        with closing(make(sandbox.url)) as made:
            yield made

    return adapter


def outbound(
    message: Any,
    *,
    channel_id: str,
    recipient: str,
    job_id: str = "run-1:step-1",
    contact_id: str = "c-1",
    workflow: Workflow | None = None,
) -> Outbound:
    return Outbound(
        job_id=job_id,
        channel_id=channel_id,
        contact_id=contact_id,
        recipient=recipient,
        message=message,
        workflow=workflow,
    )


def text(body: str = FAMILY, **extra: Any) -> TextMessage:
    return TextMessage(type="text", text=body, **extra)


def send(adapter: Adapter, out: Outbound) -> list[str]:
    """Plan the message and deliver every part, in order; the ids of all parts."""
    ids: list[str] = []
    for part in adapter.plan(out):
        ids += adapter.send_part(out, part)
    return ids


def send_one(adapter: Adapter, out: Outbound) -> list[str]:
    """Send a message the adapter takes in one request (one part, index 0)."""
    parts = adapter.plan(out)
    assert [part.index for part in parts] == [0]
    return adapter.send_part(out, parts[0])


def assert_hidden(exc: BaseException, *secrets: str) -> None:
    """Neither the error nor anything it was raised from shows any of ``secrets``."""
    seen: BaseException | None = exc
    while seen is not None:
        for secret in secrets:
            assert secret not in str(seen) and secret not in repr(seen)
        seen = seen.__cause__ or seen.__context__


def fail(
    adapter: Adapter,
    out: Outbound,
    *,
    secrets: Iterable[str] = (),
    send: Callable[[Adapter, Outbound], list[str]] = send,
) -> SendError:
    """Send ``out``, expect a ``SendError`` that hides ``secrets``, and return it."""
    with pytest.raises(SendError) as caught:
        send(adapter, out)
    assert_hidden(caught.value, *secrets)
    return caught.value


def wire(body: dict[str, Any]) -> bytes:
    """A JSON body as compact UTF-8 bytes, the way the adapters send it."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Row:
    """One row of an adapter's error table: a provider answer and the error it must become.

    The answer is scripted (``status``, ``body``, ``headers``), or, without a ``status``,
    the sandbox's own answer to the special recipient ``to``.
    """

    error: type[SendError]
    provider_code: str
    status: int | None = None
    body: Any = ""
    headers: dict[str, str] | None = None
    #: How many requests in a row get the scripted answer.
    times: int = 1
    to: str | None = None
    in_doubt: bool = False
    #: The expected hint (``pytest.approx`` for a computed one).
    retry_after: Any = None
    #: The exact message, when the row checks it.
    message: str | None = None

    @property
    def id(self) -> str:
        answer = self.to if self.status is None else str(self.status)
        return f"{answer}-{self.provider_code}-{self.error.__name__}"


def rows(table: Iterable[Row]) -> list[Any]:
    """``table`` as pytest parameters, each named after its answer and outcome."""
    return [pytest.param(row, id=row.id) for row in table]


def check(row: Row, exc: SendError) -> None:
    """``exc`` is the row's error: code, provider_code, retryable, in doubt, wait hint."""
    got = (type(exc), exc.code, exc.provider_code, exc.retryable, exc.in_doubt, exc.retry_after)
    want = (
        row.error,
        row.error.code,
        row.provider_code,
        row.error.retryable,
        row.in_doubt,
        row.retry_after,
    )
    assert got == want
    if row.message is not None:
        assert exc.message == row.message


def answer_row(
    sandbox: Sandbox,
    provider: str,
    adapter: Adapter,
    out: Outbound,
    row: Row,
    *,
    secrets: Iterable[str] = (),
    send: Callable[[Adapter, Outbound], list[str]] = send,
) -> SendError:
    """Script the row's answer (if any), send ``out``, and check the error against the row.

    Adapters never retry on their own: one request per scripted answer.
    """
    if row.status is not None:
        sandbox.fail_next(provider, row.status, row.body, headers=row.headers, times=row.times)
    exc = fail(adapter, out, secrets=secrets, send=send)
    check(row, exc)
    assert len([r for r in sandbox.requests if r.provider == provider]) == row.times
    return exc
