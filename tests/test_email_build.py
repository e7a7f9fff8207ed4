"""Email content rules (the "Content" issue): sanitising, escaping, text alternative, threading."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from typing import Any

import pytest

from herald.adapters.email.html import html_to_text, sanitize
from herald.adapters.email.message import Email, compose, id_domain, message_id, thread_id
from herald.adapters.email.smtp import mime
from herald.contract.errors import InvalidContent
from herald.contract.job import (
    AnyMessage,
    Attachment,
    Contact,
    CustomPayload,
    EmailMessage,
    MediaMessage,
    MessengerTemplate,
    QuickReply,
    TextMessage,
    WhatsAppTemplate,
)
from herald.core.render import RenderContext, render_message

SENDER = "Shop <shop@herald.test>"


def build(message: AnyMessage, **extra: Any) -> Email:
    options: dict[str, Any] = {
        "job_id": "run-1:step-1",
        "workflow_id": "wf-1",
        "contact_id": "c-1",
        "sender": SENDER,
        "recipient": "ana@example.com",
        "what": "email_smtp",
        **extra,
    }
    return compose(message, **options)


def email(html: str = "<p>Hi</p>", **extra: Any) -> EmailMessage:
    return EmailMessage(type="email", html=html, **extra)


def test_script_and_event_handlers_are_removed_and_safe_markup_kept() -> None:
    dirty = (
        '<p onclick="steal()" style="color:red;position:fixed">Hi <b>Ana</b></p>'
        "<script>alert(1)</script><img src=x onerror=alert(2)>"
        '<a href="javascript:alert(3)">x</a><a href="https://shop.example/o?id=1&amp;k=2">order</a>'
        "<style>p{display:none}</style><iframe src=https://evil.example></iframe>"
    )
    built = build(email(dirty))
    assert built.html == (
        '<p style="color:red">Hi <b>Ana</b></p><img src="x">'
        '<a rel="noopener noreferrer">x</a>'
        '<a href="https://shop.example/o?id=1&amp;k=2" rel="noopener noreferrer">order</a>'
    )
    assert sanitize(dirty) == built.html


def test_variable_values_are_escaped_in_the_html_that_is_sent() -> None:
    """Rendering escapes the value; sanitising must neither undo that nor drop it."""
    ctx = RenderContext(
        contact=Contact(id="c-1", fields={"firstname": "<b>Ana</b> & <script>x()</script>"}),
        assignee=None,
        variables={"trigger": {"order": "A<17>"}},
        now=datetime(2026, 11, 24, 14, 5, tzinfo=UTC),
    )
    message = email(
        "<p>Hi <i>$contact.firstname</i>, order ${trigger.order}</p>",
        subject="Order $trigger.order for $contact.firstname",
    )
    built = build(render_message(message, ctx))
    assert built.html == (
        "<p>Hi <i>&lt;b&gt;Ana&lt;/b&gt; &amp; &lt;script&gt;x()&lt;/script&gt;</i>,"
        " order A&lt;17&gt;</p>"
    )
    # The subject and text are plain text: the values as written.
    assert built.subject == "Order A<17> for <b>Ana</b> & <script>x()</script>"
    assert built.text == "Hi <b>Ana</b> & <script>x()</script>, order A<17>"


def test_plain_text_alternative_keeps_paragraphs_breaks_lists_and_links() -> None:
    html = (
        "<h1>Your order</h1><p>Hi Ana,<br>it shipped &amp; is on its way.</p>"
        '<ul><li>Track it <a href="https://t.example/A-17?x=1&amp;y=2">here</a></li>'
        "<li>Or call us</li></ul><ol><li>one</li><li>two</li></ol>"
        '<p><a href="https://shop.example">https://shop.example</a>'
        ' <a href="mailto:help@shop.example">Write to us</a></p>'
        "<table><tr><td>Total</td><td>€ 10</td></tr></table>"
    )
    assert html_to_text(sanitize(html)) == (
        "Your order\n\n"
        "Hi Ana,\nit shipped & is on its way.\n\n"
        "- Track it here (https://t.example/A-17?x=1&y=2)\n- Or call us\n\n"
        "1. one\n2. two\n\n"
        "https://shop.example Write to us (help@shop.example)\n\n"
        "Total € 10"
    )


def test_a_given_text_part_wins_over_the_derived_one() -> None:
    built = build(email("<p>Rich</p>", text="Plain 👍🏽"))
    assert (built.html, built.text) == ("<p>Rich</p>", "Plain 👍🏽")


def test_text_only_email_has_no_html_part() -> None:
    built = build(email("", text="Just text"))
    assert (built.html, built.text) == (None, "Just text")


def test_threading_ids_are_stable_per_job_and_shared_per_workflow_and_contact() -> None:
    first = build(email(), job_id="run-1:step-1")
    again = build(email(), job_id="run-1:step-1")
    second = build(email(), job_id="run-1:step-2")
    other_contact = build(email(), job_id="run-1:step-3", contact_id="c-2")
    other_workflow = build(email(), job_id="run-9:step-1", workflow_id="wf-2")

    assert first.message_id == again.message_id == message_id("run-1:step-1", "herald.test")
    assert first.message_id.startswith("<") and first.message_id.endswith("@herald.test>")
    assert len(first.message_id) == len("<@herald.test>") + 32
    assert second.message_id != first.message_id
    assert first.thread_id == second.thread_id == thread_id("wf-1", "c-1", "herald.test")
    assert first.thread_id is not None and first.thread_id.startswith("<thread-")
    assert other_contact.thread_id not in (None, first.thread_id)
    assert other_workflow.thread_id not in (None, first.thread_id)
    assert first.thread_headers() == {
        "Message-ID": first.message_id,
        "In-Reply-To": first.thread_id,
        "References": first.thread_id,
    }


def test_without_a_workflow_there_is_no_thread() -> None:
    built = build(email(), workflow_id=None)
    assert built.thread_id is None
    assert built.thread_headers() == {"Message-ID": built.message_id}


@pytest.mark.parametrize(
    ("sender", "domain"),
    [
        ("Shop <shop@herald.test>", "herald.test"),
        ("shop@mail.example.com", "mail.example.com"),
        ("no-domain", "herald"),
    ],
)
def test_id_domain_is_the_senders(sender: str, domain: str) -> None:
    assert id_domain(sender) == domain


def test_mime_headers_and_an_empty_subject() -> None:
    built = build(email("<p>Hi</p>"))
    raw = mime(built, [])
    assert b"\r\nSubject:\r\n" in raw  # present and empty
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Subject"] == ""
    assert parsed["Message-ID"] == built.message_id
    assert parsed["In-Reply-To"] == parsed["References"] == built.thread_id
    assert parsed["From"] == SENDER
    assert parsed["To"] == "ana@example.com"
    assert parsed.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]


def test_default_text_becomes_a_text_email_with_a_numbered_menu() -> None:
    message = TextMessage(
        type="text",
        text="Hi Ana 👩‍👩‍👧‍👦, rate us:",
        quick_replies=[QuickReply(title="Great", payload="5"), QuickReply(title="Meh")],
    )
    built = build(message)
    assert (built.subject, built.html, built.attachments) == ("", None, ())
    assert built.text == "Hi Ana 👩‍👩‍👧‍👦, rate us:\n\n1. Great\n2. Meh"


def test_default_media_becomes_attachments_with_captions_as_the_body() -> None:
    files = [
        Attachment(url="https://f.example/a/invoice.pdf", kind="file", caption="Your invoice"),
        Attachment(url="https://f.example/a/photo%20one.jpg", kind="image"),
    ]
    built = build(MediaMessage(type="media", attachments=files))
    assert built.attachments == tuple(files)
    assert built.text == "Your invoice\n\nphoto one.jpg"


def test_media_with_more_than_five_files_is_invalid() -> None:
    files = [Attachment(url=f"https://f.example/{i}.pdf", kind="file") for i in range(6)]
    with pytest.raises(InvalidContent, match="6 attachments; an email carries at most 5"):
        build(MediaMessage(type="media", attachments=files))


@pytest.mark.parametrize(
    "message",
    [
        WhatsAppTemplate(type="whatsapp_template", name="t", language="en"),
        MessengerTemplate(
            type="messenger_template", payload={"template_type": "button", "text": "x"}
        ),
        CustomPayload(type="custom_payload", payload={"x": 1}),
    ],
    ids=["whatsapp_template", "messenger_template", "custom_payload"],
)
def test_types_email_cannot_carry_are_invalid(message: AnyMessage) -> None:
    with pytest.raises(InvalidContent, match=f"email_smtp cannot send {message.type}"):
        build(message)


def test_an_email_without_body_or_attachments_is_invalid() -> None:
    with pytest.raises(InvalidContent, match="no body"):
        build(email("", subject="Only a subject"))
    with pytest.raises(InvalidContent, match="no body"):
        build(email("<script>x</script>"))  # nothing left after sanitising


def rendered(message: AnyMessage, **fields: Any) -> AnyMessage:
    """``message`` rendered for a contact with these fields."""
    ctx = RenderContext(
        contact=Contact(id="c-1", fields=fields),
        assignee=None,
        variables={},
        now=datetime(2026, 11, 24, 14, 5, tzinfo=UTC),
    )
    return render_message(message, ctx)


#: What no subject may hold once rendered: line breaks and every other control character.
CONTROLS = ["\r\nBcc: all@example.com", "\u2028", "\x85", "\x0b", "\x0c", "\x00", "\x7f", "\t"]


@pytest.mark.parametrize("bad", CONTROLS, ids=[f"U+{ord(c[0]):04X}" for c in CONTROLS])
def test_a_variable_bringing_a_control_character_into_the_subject_is_invalid(bad: str) -> None:
    # The job as written is fine (its subject holds a variable); the value breaks it.
    message = rendered(email(subject="Hi $contact.firstname"), firstname=f"Ana{bad}")
    with pytest.raises(InvalidContent) as caught:
        build(message)
    assert caught.value.message == (
        "email_smtp: the subject may not contain line breaks or control characters"
        f" (U+{ord(bad[0]):04X}, from a variable's value)"
    )


def test_a_file_name_taken_from_the_url_with_a_control_character_is_invalid() -> None:
    files = [
        Attachment(url="https://f.example/ok.pdf", kind="file"),
        Attachment(url="https://f.example/a%0D%0AContent-Type:%20x.pdf", kind="file"),
    ]
    with pytest.raises(InvalidContent) as caught:
        build(MediaMessage(type="media", attachments=files))
    assert caught.value.message == (
        "email_smtp: attachment 2's file name, taken from its URL, holds a control character"
        " (U+000D); give the attachment a filename"
    )


def test_a_control_character_in_a_file_name_as_written_is_refused_by_the_model() -> None:
    with pytest.raises(ValueError, match="filename"):
        Attachment(url="https://f.example/a.pdf", kind="file", filename="a\x00.pdf")
