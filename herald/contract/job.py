"""The send job and the interaction (docs/contract.md#the-send-job), as strict pydantic models.

Herald's own objects forbid unknown fields, so a typo in a producer is an
``invalid_job`` with a clear message instead of a silently ignored option.
Provider-specific payloads (template components, custom JSON) stay free JSON.

Values that end up in a protocol header or a log line (the job id, a contact's channel
identifier, an email subject, an attachment's file name) are one line of text: a control
character there is never legitimate (:data:`OneLine`). A lone surrogate (a JSON ``\ud800``
escape without its pair) is no text at all, anywhere in a job (:func:`parse_job`).
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    field_validator,
    model_validator,
)

from herald.contract.errors import InvalidContent, InvalidJob

#: The default message's text limit, in Unicode code points, before rendering.
MAX_TEXT_CHARS = 2000
#: Attachments an email may carry.
MAX_EMAIL_ATTACHMENTS = 5
RESERVED_NAMESPACES = frozenset({"contact", "assignee", "system"})
LAST_INTERACTED = "last_interacted"

M = TypeVar("M", bound=BaseModel)

#: C0 controls (NUL, TAB, LF, VT, FF, CR, ESC, ...), DEL, C1 controls (NEL, ...), and the
#: Unicode line and paragraph separators: what a one-line value may never hold.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def control_character(text: str) -> str | None:
    """The first character of ``text`` a one-line value may not hold, or None."""
    found = _CONTROL.search(text)
    return None if found is None else found[0]


def codepoint(char: str) -> str:
    """A character as people and logs can read it: ``U+000D``."""
    return f"U+{ord(char):04X}"


def _one_line(text: str) -> str:
    bad = control_character(text)
    if bad is not None:
        raise ValueError(f"may not contain line breaks or control characters ({codepoint(bad)})")
    return text


#: Text that goes into a header or a log line as it is: no control characters. Variables
#: (``$contact.firstname``) are welcome; what their values bring is checked after rendering.
OneLine = Annotated[str, AfterValidator(_one_line)]


class Strict(BaseModel):
    """Base of Herald's own objects: unknown fields are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Workflow(Strict):
    """Where in which workflow run this step is."""

    workflow_id: str | None = None
    run_id: str | None = None
    step_id: str | None = None


class ContactChannel(Strict):
    """The contact's identifier on one connected channel."""

    channel_id: str = Field(min_length=1)
    identifier: Annotated[OneLine, Field(min_length=1)]
    last_interaction_at: AwareDatetime | None = None


class Contact(Strict):
    """The contact a job sends to: its fields and its channel identifiers."""

    id: str = Field(min_length=1)
    fields: dict[str, JsonValue] = Field(default_factory=dict)
    channels: list[ContactChannel] = Field(default_factory=list)


class QuickReply(Strict):
    """One choice of an automated chat menu."""

    title: str = Field(min_length=1)
    payload: str | None = None


#: A file library id (``herald files add`` prints it).
FILE_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


class Attachment(Strict):
    """A file: by URL (``url`` and ``kind``), or from the file library (``file_id``; its
    ``kind`` defaults to what the file's content type says)."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["url", "kind"]}, {"required": ["file_id"]}]}
    )

    url: Annotated[str, Field(pattern=r"^https?://\S+$")] | None = None
    file_id: Annotated[str, Field(pattern=FILE_ID_PATTERN)] | None = None
    kind: Literal["image", "file", "video", "audio"] | None = None
    filename: OneLine | None = None
    caption: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Attachment:
        if (self.url is None) == (self.file_id is None):
            raise ValueError("an attachment takes a url or a file_id (exactly one)")
        if self.url is not None and self.kind is None:
            raise ValueError("an attachment by url needs a kind (image, file, video, audio)")
        return self

    @property
    def link(self) -> str:
        """The URL this attachment is sent from (the pipeline gives a library file sent on
        a channel that takes URLs only a signed one)."""
        if self.url is None:
            raise InvalidContent(f"file {self.file_id} has no URL on this channel")
        return self.url

    @property
    def sort(self) -> Literal["image", "file", "video", "audio"]:
        """The attachment's kind (the pipeline fills in a library file's)."""
        if self.kind is None:
            raise InvalidContent(f"file {self.file_id}: its kind is not known")
        return self.kind


class TextMessage(Strict):
    """A text message, optionally with a quick-reply menu."""

    type: Literal["text"]
    text: str = Field(min_length=1)
    quick_replies: list[QuickReply] | None = None
    message_tag: str | None = None


class MediaMessage(Strict):
    """One or more attachments."""

    type: Literal["media"]
    attachments: list[Attachment] = Field(min_length=1)
    message_tag: str | None = None


class EmailMessage(Strict):
    """An email: subject (may be empty), rich-text HTML, an optional plain text."""

    type: Literal["email"]
    subject: OneLine = ""
    html: str = ""
    text: str | None = None
    attachments: list[Attachment] = Field(default_factory=list, max_length=MAX_EMAIL_ATTACHMENTS)


class WhatsAppTemplate(Strict):
    """A pre-approved WhatsApp template; parameters may hold variables."""

    type: Literal["whatsapp_template"]
    name: str = Field(min_length=1)
    language: str = Field(min_length=1)
    components: list[dict[str, JsonValue]] = Field(default_factory=list)


class MessengerTemplate(Strict):
    """A Messenger generic or button template payload."""

    type: Literal["messenger_template"]
    payload: dict[str, JsonValue]
    message_tag: str | None = None

    @field_validator("payload")
    @classmethod
    def _known_template(cls, payload: dict[str, JsonValue]) -> dict[str, JsonValue]:
        if payload.get("template_type") not in ("generic", "button"):
            raise ValueError("payload.template_type must be 'generic' or 'button'")
        return payload


class CustomPayload(Strict):
    """Raw provider JSON, sent as it is after rendering variables in its strings."""

    type: Literal["custom_payload"]
    payload: dict[str, JsonValue]


DefaultMessage = Annotated[TextMessage | MediaMessage, Field(discriminator="type")]
ChannelResponse = Annotated[
    TextMessage
    | MediaMessage
    | EmailMessage
    | WhatsAppTemplate
    | MessengerTemplate
    | CustomPayload,
    Field(discriminator="type"),
]
AnyMessage = (
    TextMessage | MediaMessage | EmailMessage | WhatsAppTemplate | MessengerTemplate | CustomPayload
)


class SendJob(Strict):
    """One "Send a Message" step for one contact (docs/contract.md#the-send-job)."""

    job_id: Annotated[OneLine, Field(min_length=1)] | None = None
    workflow: Workflow | None = None
    contact: Contact
    assignee: dict[str, JsonValue] | None = None
    variables: dict[str, JsonValue] = Field(default_factory=dict)
    channel: str = Field(default=LAST_INTERACTED, min_length=1)
    message: DefaultMessage
    channel_responses: dict[str, ChannelResponse] = Field(default_factory=dict)
    failure_branch: bool = False
    enqueued_at: AwareDatetime | None = None

    @field_validator("variables")
    @classmethod
    def _no_reserved_namespace(cls, variables: dict[str, JsonValue]) -> dict[str, JsonValue]:
        taken = sorted(RESERVED_NAMESPACES & variables.keys())
        if taken:
            raise ValueError(f"variables may not use the reserved keys {', '.join(taken)}")
        return variables

    @field_validator("message")
    @classmethod
    def _text_limit(cls, message: TextMessage | MediaMessage) -> TextMessage | MediaMessage:
        if isinstance(message, TextMessage) and len(message.text) > MAX_TEXT_CHARS:
            raise ValueError(
                f"message.text is {len(message.text)} characters; the limit is {MAX_TEXT_CHARS}"
            )
        return message


class Interaction(Strict):
    """An inbound message from a contact (``herald.record_interaction``)."""

    contact_id: str = Field(min_length=1)
    channel_id: str = Field(min_length=1)
    identifier: str = Field(min_length=1)
    at: AwareDatetime


#: The most jobs a batch may carry by default (``HERALD_BATCH_MAX``).
DEFAULT_BATCH_MAX = 1000


class Batch(Strict):
    """The keyword arguments of ``herald.send_batch`` (docs/contract.md#batches): its JSON
    Schema, for producers; a worker reads each job on its own, so one invalid job fails
    alone."""

    jobs: list[SendJob] = Field(min_length=1, max_length=DEFAULT_BATCH_MAX)


def describe(exc: ValidationError) -> str:
    """A short, people-readable summary of a validation error (no input values echoed)."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False)[:5]:
        where = ".".join(_shown(str(p)) for p in err["loc"]) or "job"
        parts.append(f"{where}: {err['msg']}")
    more = len(exc.errors()) - len(parts)
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def _shown(key: str) -> str:
    """A key of the job as an error message may show it: controls and surrogates escaped
    (keys are the producer's text, and the message goes to an event and a log)."""
    if control_character(key) is None and _SURROGATE.search(key) is None:
        return key
    return key.encode("unicode_escape", "backslashreplace").decode("ascii")


def lone_surrogate(raw: Any) -> tuple[str, str] | None:
    """Where in decoded JSON a string (or a key) holds a lone surrogate: its dotted path and
    the surrogate; None when every string is text."""
    try:
        # The common case, at C speed: text that encodes holds no lone surrogate.
        json.dumps(raw, ensure_ascii=False).encode("utf-8")
        return None
    except UnicodeEncodeError:
        pass  # find where, below
    except (TypeError, ValueError, RecursionError):
        pass  # not plain JSON data: walk it
    stack: list[tuple[Any, str]] = [(raw, "")]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            found = _SURROGATE.search(value)
            if found is not None:
                return path, found[0]
        elif isinstance(value, dict | list):
            pairs = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in pairs:
                step = f"{path}.{_shown(str(key))}" if path else _shown(str(key))
                found = _SURROGATE.search(key) if isinstance(key, str) else None
                if found is not None:
                    return step, found[0]
                stack.append((item, step))
    return None


def _parse(model: type[M], raw: Any, what: str) -> M:
    if not isinstance(raw, dict):
        raise InvalidJob(f"{what} must be a JSON object, not {type(raw).__name__}")
    broken = lone_surrogate(raw)
    if broken is not None:
        # Checked first: such a string passes validation, then fails every encoder (the
        # outcome event could not be written).
        where, char = broken
        raise InvalidJob(
            f"invalid {what}: {where or what}: holds a lone surrogate ({codepoint(char)}),"
            f" which is not Unicode text (a JSON \\u{ord(char):04x} escape without its pair?)"
        )
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise InvalidJob(f"invalid {what}: {describe(exc)}") from exc


def parse_job(raw: Any) -> SendJob:
    """Validate a decoded payload as a send job, or raise :class:`InvalidJob`."""
    return _parse(SendJob, raw, "job")


def parse_interaction(raw: Any) -> Interaction:
    """Validate a decoded payload as an interaction, or raise :class:`InvalidJob`."""
    return _parse(Interaction, raw, "interaction")
