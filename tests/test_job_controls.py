"""Control characters and broken Unicode in a job: refused with a message naming the field.

A control character in a field of the job as written is ``invalid_job`` (the producer's
mistake, found before anything is sent); one that a variable's value brings in is
``invalid_content`` (found after rendering). A lone surrogate anywhere is ``invalid_job``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest

from herald.contract.errors import InvalidJob
from herald.contract.job import parse_job
from herald.testing.sandbox import Sandbox
from tests.conftest import Core, make_job

#: Name -> character: the ones that used to end as ``internal`` or go raw into a header.
CONTROLS = {
    "U+2028": "\u2028",
    "NEL": "\x85",
    "VT": "\x0b",
    "FF": "\x0c",
    "NUL": "\x00",
    "DEL": "\x7f",
    "CR": "\r",
    "LF": "\n",
    "TAB": "\t",
}
MAIL = {"channel_id": "mail", "identifier": "ana@example.com"}


def email_job(**message: Any) -> dict[str, Any]:
    """A job for the email channel with this channel response."""
    response = {"type": "email", "subject": "Hello", "html": "<p>Hi</p>", **message}
    return make_job([MAIL], channel="mail", channel_responses={"mail": response})


def with_subject(bad: str) -> dict[str, Any]:
    return email_job(subject=f"Order $contact.firstname{bad}shipped")


def with_identifier(bad: str) -> dict[str, Any]:
    return make_job([{"channel_id": "mail", "identifier": f"ana{bad}@example.com"}])


def with_filename(bad: str) -> dict[str, Any]:
    return email_job(
        attachments=[{"url": "https://f.example/a.pdf", "kind": "file", "filename": f"a{bad}.pdf"}]
    )


def with_job_id(bad: str) -> dict[str, Any]:
    return make_job(job_id=f"run-1{bad}step-1")


#: Field of the job as written -> (how to put a value in it, where the message says it is).
FIELDS: dict[str, tuple[Callable[[str], dict[str, Any]], str]] = {
    "subject": (with_subject, "channel_responses.mail.email.subject"),
    "identifier": (with_identifier, "contact.channels.0.identifier"),
    "filename": (with_filename, "channel_responses.mail.email.attachments.0.filename"),
    "job_id": (with_job_id, "job_id"),
}


@pytest.mark.parametrize("name", sorted(CONTROLS))
@pytest.mark.parametrize("field", sorted(FIELDS))
def test_a_control_character_in_a_field_as_written_is_invalid_job(field: str, name: str) -> None:
    make, where = FIELDS[field]
    bad = CONTROLS[name]
    with pytest.raises(InvalidJob) as caught:
        parse_job(make(bad))
    assert caught.value.message == (
        f"invalid job: {where}: Value error, may not contain line breaks or control characters"
        f" (U+{ord(bad):04X})"
    )


def test_variables_and_ordinary_text_in_those_fields_are_valid() -> None:
    job = parse_job(email_job(subject="Olá $contact.firstname, 👩‍👩‍👧‍👦 ${order.id|—}"))
    assert job.channel_responses["mail"].subject.startswith("Olá")  # type: ignore[union-attr]
    assert parse_job(make_job(job_id="pedido ção:1")).job_id == "pedido ção:1"


def _surrogate_in(where: str) -> dict[str, Any]:
    job = make_job()
    lone = "\ud800"
    if where == "job_id":
        job["job_id"] = f"run{lone}"
    elif where == "contact.fields.firstname":
        job["contact"]["fields"]["firstname"] = f"An{lone}a"
    elif where == "message.text":
        job["message"]["text"] = f"Hi {lone}"
    elif where == "contact.channels.0.identifier":
        job["contact"]["channels"][0]["identifier"] = lone
    else:  # a key: its path shows the key escaped, so the message itself stays valid text
        job["variables"] = {f"k{lone}": "v"}
    return job


SURROGATES = {
    "job_id": "job_id",
    "contact.fields.firstname": "contact.fields.firstname",
    "message.text": "message.text",
    "contact.channels.0.identifier": "contact.channels.0.identifier",
    "variables key": "variables.k\\ud800",
}


@pytest.mark.parametrize("where", sorted(SURROGATES))
def test_a_lone_surrogate_anywhere_is_invalid_job(where: str) -> None:
    with pytest.raises(InvalidJob) as caught:
        parse_job(_surrogate_in(where))
    message = caught.value.message
    assert message == (
        f"invalid job: {SURROGATES[where]}: holds a lone surrogate (U+D800), which is not"
        " Unicode text (a JSON \\ud800 escape without its pair?)"
    )
    message.encode()  # the message can be written to an event and a log


# --- end to end: the outcome event --------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "name"),
    [("subject", "NUL"), ("subject", "VT"), ("filename", "CR"), ("identifier", "DEL")],
)
def test_a_job_holding_a_control_character_ends_as_invalid_job(
    core: Core, field: str, name: str
) -> None:
    make, where = FIELDS[field]
    event = core.send(make(CONTROLS[name]))
    assert event.data.error is not None
    assert (event.data.error.code, event.data.channel_id) == ("invalid_job", None)
    assert where in event.data.error.message


def test_a_job_id_with_crlf_ends_as_invalid_job_and_sends_nothing(
    core: Core, sandbox: Sandbox
) -> None:
    before = len(sandbox.requests)
    job = make_job([{"channel_id": "hook", "identifier": "u-1"}], job_id="run-1\r\nX-Forged: 1")
    event = core.send(job)
    assert event.data.error is not None
    assert event.data.error.code == "invalid_job"
    assert event.data.error.message.startswith("invalid job: job_id: ")
    assert len(sandbox.requests) == before


def test_a_lone_surrogate_in_the_job_still_ends_with_an_event(core: Core) -> None:
    job = make_job()
    job["contact"]["fields"]["firstname"] = "An\ud800a"
    event = core.send(job)
    assert event.data.error is not None
    assert event.data.error.code == "invalid_job"
    assert "contact.fields.firstname" in event.data.error.message


@pytest.mark.parametrize("name", ["NUL", "VT", "U+2028", "LF"])
def test_a_variable_bringing_a_control_character_into_a_subject_is_invalid_content(
    core: Core, name: str
) -> None:
    job = with_subject(" ")
    job["contact"]["fields"]["firstname"] = f"Ana{CONTROLS[name]}"
    event = core.send(job)
    assert event.data.error is not None
    assert (event.data.error.code, event.data.channel_id) == ("invalid_content", "mail")
    assert "the subject may not contain" in event.data.error.message


def test_a_non_ascii_job_id_is_sent_on_the_custom_channel(core: Core, sandbox: Sandbox) -> None:
    job_id = f"pedido-ção-{json.dumps(make_job()['job_id'])[3:-1]}"
    job = make_job([{"channel_id": "hook", "identifier": "u-1"}], job_id=job_id, channel="hook")
    event = core.send(job)
    assert event.data.error is None
    [seen] = [r for r in sandbox.requests if r.provider == "custom" and job_id in r.body.decode()]
    assert seen.headers["webhook-id"] == quote(job_id, safe=":-")
    assert seen.json()["data"]["job_id"] == job_id
