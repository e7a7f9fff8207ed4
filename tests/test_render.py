"""Content rendering (docs/contract.md#how-content-is-rendered): variables, snippets, values."""

from __future__ import annotations

import html
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from herald.contract.job import (
    Contact,
    CustomPayload,
    EmailMessage,
    MediaMessage,
    MessengerTemplate,
    TextMessage,
    WhatsAppTemplate,
)
from herald.core.render import RenderContext, render_message, render_text

NOW = datetime(2026, 11, 24, 14, 5, 33, tzinfo=timezone(timedelta(hours=1)))
JOE = {"firstname": "Joe", "email": "joe@shop.example"}
SNIPPETS = {
    "hours": "We open 9-17, $contact.firstname.",
    "chain": "see /hours",
    "html": "<b>$contact.firstname</b>",
}

# Hypothesis' example database would write a .hypothesis folder into the repo.
props = settings(database=None, max_examples=300, deadline=None)


def make_ctx(
    fields: dict[str, Any] | None = None,
    variables: dict[str, Any] | None = None,
    assignee: dict[str, Any] | None = None,
    snippets: dict[str, str] | None = None,
) -> RenderContext:
    contact_fields = (
        {"firstname": "Ana", "lastname": "Silva", "email": "ana@example.com", "city": "Lisbon"}
        if fields is None
        else fields
    )
    return RenderContext(
        contact=Contact(id="c-42", fields=contact_fields),
        assignee={"firstname": "Joe", "email": "joe@shop.example"}
        if assignee is None
        else assignee,
        variables=(
            {
                "trigger": {"order_id": "A-17", "count": 3, "price": 2.5, "paid": True},
                "http": {
                    "status": "shipped",
                    "body": {"status": "ok", "items": [{"sku": "X1"}, {"sku": "Y2"}]},
                    "empty": "",
                    "none": None,
                    "no": False,
                    "zero": 0,
                },
            }
            if variables is None
            else variables
        ),
        now=NOW,
        snippets=SNIPPETS if snippets is None else snippets,
    )


CTX = make_ctx()


def r(text: str, **kwargs: Any) -> str:
    return render_text(text, CTX, **kwargs)


# --- variables -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hi $contact.firstname", "Hi Ana"),
        ("Hi $contact.firstname.", "Hi Ana."),
        ("Hi $contact.firstname, you", "Hi Ana, you"),
        ("Hi $contact.firstname!", "Hi Ana!"),
        ("($contact.firstname)", "(Ana)"),
        ("$contact.firstname-", "Ana-"),
        ("$contact.firstname様", "Ana様"),
        ("$contact.name", "Ana Silva"),
        ("$contact.id", "c-42"),
        ("$contact.email", "ana@example.com"),
        ("$assignee.firstname <$assignee.email>", "Joe <joe@shop.example>"),
        ("order $trigger.order_id", "order A-17"),
        ("$http.body.status", "ok"),
        ("$http.body.items.1.sku", "Y2"),
        ("${contact.firstname}", "Ana"),
        ("${http.status|on its way}", "shipped"),
        ("${contact.firstname}san", "Anasan"),
        ("$contact.firstname$contact.lastname", "AnaSilva"),
    ],
)
def test_variables_render(text: str, expected: str) -> None:
    assert r(text) == expected


def test_the_contract_example() -> None:
    text = "🤖 Hi $contact.firstname, order $trigger.order_id is ${http.status|on its way}."
    assert r(text) == "🤖 Hi Ana, order A-17 is shipped."


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$trigger.count", "3"),
        ("$trigger.price", "2.5"),
        ("$trigger.paid", "true"),
        ("$http.no", "false"),
        ("$http.zero", "0"),
        ("$http.body.items", '[{"sku":"X1"},{"sku":"Y2"}]'),
        ("$http.body", '{"status":"ok","items":[{"sku":"X1"},{"sku":"Y2"}]}'),
    ],
)
def test_values_render_as_json_writes_them(text: str, expected: str) -> None:
    assert r(text) == expected


def test_non_ascii_json_is_not_escaped() -> None:
    ctx = make_ctx(variables={"v": {"o": {"city": "Zürich 🤖"}}})
    assert render_text("$v.o", ctx) == '{"city":"Zürich 🤖"}'


@pytest.mark.parametrize(
    "text",
    [
        "$10",
        "US$5",
        "US$5.00",
        "$10.50",
        "$",
        "a $ b",
        "$$",
        "costs $ 5",
        "$contact",
        "${contact}",
        "$unknown.key",
        "${contact.firstname",
        "${ contact.firstname }",
        "$.firstname",
    ],
)
def test_text_that_is_no_variable_is_untouched(text: str) -> None:
    assert r(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "$contact.nickname",
        "$http.empty",
        "$http.none",
        "$http.body.missing",
        "$http.body.items.9.sku",
        "$http.status.deeper",
        "$assignee.phone",
        "${contact.nickname}",
    ],
)
def test_unknown_or_empty_variable_stays_as_written(text: str) -> None:
    assert r(f"Hi {text}!") == f"Hi {text}!"


def test_braced_variable_of_unknown_namespace_takes_its_fallback() -> None:
    # Braces make it a variable whatever the namespace (a workflow step that did not run).
    assert r("Status: ${unknown.key|pending}") == "Status: pending"
    assert r("Status: ${unknown.key}") == "Status: ${unknown.key}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${contact.nickname|friend}", "friend"),
        ("${http.empty|on its way}", "on its way"),
        ("${http.none|n/a}", "n/a"),
        ("[${contact.nickname|}]", "[]"),
        ("${assignee.phone|our team}", "our team"),
    ],
)
def test_fallback_applies_to_unknown_or_empty(text: str, expected: str) -> None:
    assert r(text) == expected


def test_no_assignee_is_a_known_namespace_without_keys() -> None:
    ctx = make_ctx(assignee={})
    assert render_text("$assignee.firstname", ctx) == "$assignee.firstname"
    assert render_text("${assignee.firstname|us}", ctx) == "us"
    ctx = RenderContext(contact=CTX.contact, assignee=None, variables={}, now=NOW)
    assert render_text("${assignee.firstname|us}", ctx) == "us"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"firstname": "Ana"}, "Ana"),
        ({"lastname": "Silva"}, "Silva"),
        ({"firstname": "Ana", "lastname": None}, "Ana"),
        ({"name": "Ana S."}, "Ana S."),
        ({}, "${contact.name}"),
    ],
)
def test_contact_name_joins_first_and_last(fields: dict[str, Any], expected: str) -> None:
    assert render_text("${contact.name}", make_ctx(fields=fields)) == expected


def test_contact_id_is_the_contacts_own() -> None:
    assert render_text("$contact.id", make_ctx(fields={"id": "other"})) == "c-42"


def test_reserved_namespaces_win_over_variables() -> None:
    ctx = make_ctx(variables={"contact": {"firstname": "Eve"}})
    assert render_text("$contact.firstname", ctx) == "Ana"


def test_system_date_and_time_come_from_now() -> None:
    text = "$system.current_datetime|$system.current_date|$system.current_time"
    assert r(text) == "2026-11-24 14:05|2026-11-24|14:05"


def test_system_keeps_the_given_zone() -> None:
    # "now" is already in the workspace zone: no conversion to UTC.
    ctx = RenderContext(contact=CTX.contact, assignee=None, variables={}, now=NOW)
    assert render_text("$system.current_time", ctx) == "14:05"
    assert render_text("$system.nothing", ctx) == "$system.nothing"


# --- values are data ---------------------------------------------------------------------


def test_a_value_is_never_expanded_again() -> None:
    ctx = make_ctx(fields={"firstname": "$contact.email", "nick": "${contact.email|x}"})
    assert render_text("Hi $contact.firstname", ctx) == "Hi $contact.email"
    assert render_text("$contact.nick", ctx) == "${contact.email|x}"


def test_a_value_does_not_expand_a_snippet() -> None:
    ctx = make_ctx(variables={"trigger": {"msg": "/hours", "msg2": "see /hours"}})
    assert render_text("$trigger.msg", ctx) == "/hours"
    assert render_text("$trigger.msg2", ctx) == "see /hours"


def test_a_fallback_is_inserted_as_written() -> None:
    assert r("${contact.nickname|$contact.firstname}") == "$contact.firstname"


# --- snippets ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/hours", "We open 9-17, Ana."),
        ("/hours and more", "We open 9-17, Ana. and more"),
        ("Note: /hours", "Note: We open 9-17, Ana."),
        ("Hi!\n/hours", "Hi!\nWe open 9-17, Ana."),
        ("/hours.", "We open 9-17, Ana.."),
        ("/hours, thanks", "We open 9-17, Ana., thanks"),
    ],
)
def test_snippets_expand(text: str, expected: str) -> None:
    assert r(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "https://x.y/hours",
        "see https://shop.example/hours today",
        "and/or",
        "yes/hours",
        "/unknown",
        "/hoursx",
        "/hours-x",
        "/hours-x/y",
        "/hours/x",
        "/horasé",
        "/ hours",
        "/",
    ],
)
def test_text_that_is_no_snippet_is_untouched(text: str) -> None:
    assert r(text) == text


def test_snippets_do_not_nest() -> None:
    assert r("/chain") == "see /hours"


def test_snippets_can_be_turned_off() -> None:
    assert r("/hours $contact.firstname", snippets=False) == "/hours Ana"


# --- escape, emoji, robustness ------------------------------------------------------------


def test_escape_applies_to_values_and_fallbacks_only() -> None:
    ctx = make_ctx(fields={"firstname": "<Ana & Co>"})
    text = "<p>Hi $contact.firstname, ${contact.nick|<friend>}</p>"
    assert render_text(text, ctx, escape=html.escape) == (
        "<p>Hi &lt;Ana &amp; Co&gt;, &lt;friend&gt;</p>"
    )


def test_escape_applies_inside_snippets_but_not_to_snippet_text() -> None:
    ctx = make_ctx(fields={"firstname": "A&B"})
    assert render_text("/html", ctx, escape=html.escape) == "<b>A&amp;B</b>"


def test_variable_left_as_written_is_not_escaped() -> None:
    assert r("<i>$contact.nickname</i>", escape=html.escape) == "<i>$contact.nickname</i>"


EMOJI = "👩🏽‍💻 👨‍👩‍👧‍👦 👍🏿 🇵🇹 🏳️‍🌈"


def test_emoji_pass_through_intact() -> None:
    ctx = make_ctx(fields={"firstname": EMOJI}, snippets={"e": EMOJI + " $contact.firstname"})
    assert render_text(f"{EMOJI} $contact.firstname{EMOJI}", ctx) == f"{EMOJI} {EMOJI}{EMOJI}"
    assert render_text("/e", ctx) == f"{EMOJI} {EMOJI}"


def test_unwritable_values_count_as_empty() -> None:
    huge = 10**5000  # past Python's int-to-str digit limit
    ctx = make_ctx(variables={"v": {"n": huge, "items": [1]}})
    assert render_text("$v.n ${v.n|big}", ctx) == "$v.n big"
    assert render_text("$v.items.0 $v.items." + "0" * 5000, ctx).startswith("1 $v.items.")


# --- render_message ----------------------------------------------------------------------


def test_render_text_message() -> None:
    message = TextMessage.model_validate(
        {
            "type": "text",
            "text": "Hi $contact.firstname /hours",
            "quick_replies": [
                {"title": "/hours $trigger.order_id", "payload": "order:$trigger.order_id"},
                {"title": "No"},
            ],
        }
    )
    out = render_message(message, CTX)
    assert isinstance(out, TextMessage)
    assert out.text == "Hi Ana We open 9-17, Ana."
    assert out.quick_replies is not None
    assert [(q.title, q.payload) for q in out.quick_replies] == [
        ("/hours A-17", "order:A-17"),
        ("No", None),
    ]
    assert message.text == "Hi $contact.firstname /hours"  # the input is left alone


def test_render_text_message_keeps_unset_fields_unset() -> None:
    message = TextMessage(type="text", text="$contact.firstname")
    out = render_message(message, CTX)
    assert out.model_dump(exclude_unset=True) == {"type": "text", "text": "Ana"}


def test_render_media_message() -> None:
    message = MediaMessage.model_validate(
        {
            "type": "media",
            "attachments": [
                {
                    "url": "https://f.example/$trigger.order_id",
                    "kind": "image",
                    "caption": "/hours",
                },
                {"url": "https://f.example/b.pdf", "kind": "file", "filename": "$trigger.order_id"},
            ],
        }
    )
    out = render_message(message, CTX)
    assert isinstance(out, MediaMessage)
    first, second = out.attachments
    assert first.url == "https://f.example/$trigger.order_id"
    assert first.caption == "We open 9-17, Ana."
    assert second.caption is None
    assert second.filename == "$trigger.order_id"


def test_render_email() -> None:
    ctx = make_ctx(fields={"firstname": "<Ana>"})
    message = EmailMessage(
        type="email",
        subject="/hours for $contact.firstname",
        html="<p>Hi $contact.firstname</p>\n/hours",
        text="Hi $contact.firstname\n/hours",
    )
    out = render_message(message, ctx)
    assert isinstance(out, EmailMessage)
    assert out.subject == "/hours for <Ana>"
    assert out.html == "<p>Hi &lt;Ana&gt;</p>\nWe open 9-17, &lt;Ana&gt;."
    assert out.text == "Hi <Ana>\nWe open 9-17, <Ana>."


def test_render_email_without_text() -> None:
    out = render_message(EmailMessage(type="email"), CTX)
    assert isinstance(out, EmailMessage)
    assert (out.subject, out.html, out.text) == ("", "", None)


def test_render_whatsapp_template() -> None:
    message = WhatsAppTemplate.model_validate(
        {
            "type": "whatsapp_template",
            "name": "order_update",
            "language": "en_US",
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": "$contact.firstname"},
                        {"type": "text", "text": "/hours"},
                        {"type": "currency", "amount_1000": 2500},
                    ],
                }
            ],
        }
    )
    out = render_message(message, CTX)
    assert isinstance(out, WhatsAppTemplate)
    assert out.components[0]["parameters"] == [
        {"type": "text", "text": "Ana"},
        {"type": "text", "text": "/hours"},
        {"type": "currency", "amount_1000": 2500},
    ]
    assert out.name == "order_update"


@pytest.mark.parametrize("model", [MessengerTemplate, CustomPayload])
def test_render_payloads(model: type[MessengerTemplate] | type[CustomPayload]) -> None:
    kind = "messenger_template" if model is MessengerTemplate else "custom_payload"
    payload = {
        "template_type": "button",
        "text": "Hi $contact.firstname /hours",
        "buttons": [{"title": "${http.status|?}", "n": 1, "ok": True, "x": None}],
        "$contact.firstname": "keys stay",
    }
    out = render_message(model.model_validate({"type": kind, "payload": payload}), CTX)
    assert isinstance(out, model)
    assert out.payload == {
        "template_type": "button",
        "text": "Hi Ana /hours",
        "buttons": [{"title": "shipped", "n": 1, "ok": True, "x": None}],
        "$contact.firstname": "keys stay",
    }


# --- properties --------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
names = st.text(alphabet="abcxyz019_-", min_size=1, max_size=6)
template_chars = st.sampled_from(list("$/{}|.-_ \n,ab1")) | st.characters()
templates = st.text(alphabet=template_chars, max_size=80) | st.sampled_from(
    ["$v.a.b", "${v.a|x}", "/s", "$contact.firstname.", "${v.0|}"]
).flatmap(lambda seed: st.text(alphabet=template_chars, max_size=20).map(lambda t: seed + t))


@props
@given(
    text=templates,
    variables=st.dictionaries(names, json_values, max_size=4),
    fields=st.dictionaries(names, json_values, max_size=4),
    snippets=st.dictionaries(names, st.text(alphabet=template_chars, max_size=20), max_size=3),
    escape=st.sampled_from([None, html.escape]),
)
def test_any_text_and_values_render_without_raising(
    text: str,
    variables: dict[str, Any],
    fields: dict[str, Any],
    snippets: dict[str, str],
    escape: Any,
) -> None:
    ctx = make_ctx(fields=fields, variables=variables, snippets=snippets)
    assert isinstance(render_text(text, ctx, escape=escape), str)
    assert isinstance(render_text(text, ctx, snippets=False), str)


@props
@given(text=st.text().filter(lambda t: "$" not in t and "/" not in t))
def test_text_without_dollar_or_slash_is_unchanged(text: str) -> None:
    assert r(text) == text
    assert r(text, escape=html.escape) == text


@props
@given(value=st.text(min_size=1), before=st.sampled_from(["", "x ", "/s "]))
def test_a_string_value_appears_verbatim(value: str, before: str) -> None:
    ctx = make_ctx(variables={"trigger": {"v": value}}, snippets={"s": "S"})
    expected = ("S " if before == "/s " else before) + value + "!"
    assert render_text(before + "$trigger.v!", ctx) == expected
    assert render_text(before + "${trigger.v|fallback}!", ctx) == expected


@props
@given(value=json_values.filter(lambda v: v not in (None, "")))
def test_any_json_value_renders_as_compact_json(value: Any) -> None:
    ctx = make_ctx(variables={"trigger": {"v": value}})
    expected = (
        value
        if isinstance(value, str)
        else json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    )
    assert render_text("<$trigger.v>", ctx) == f"<{expected}>"
