"""The channels file: connected channels as TOML, one typed model per channel type.

A value ``${NAME}`` is read from the environment so the file itself holds no secret.
Secrets become :class:`pydantic.SecretStr`, so they print as ``**********`` in logs,
tables and exceptions. See docs/contract.md#configuration.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from herald.contract.errors import ConfigError


class ChannelType(StrEnum):
    """The channel types Herald can send through (docs/contract.md#the-channels-file)."""

    WHATSAPP = "whatsapp"
    MESSENGER = "messenger"
    INSTAGRAM = "instagram"
    TELEGRAM = "telegram"
    TWILIO_SMS = "twilio_sms"
    EMAIL_SMTP = "email_smtp"
    SENDGRID = "sendgrid"
    LINE = "line"
    VIBER = "viber"
    CUSTOM = "custom"


#: What Telegram takes as a webhook's ``secret_token``.
_SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


class ChannelBase(BaseModel):
    """What every channel has: its id and an optional base URL for its provider."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    base_url: Annotated[str, Field(pattern=r"^https?://[^\s/]+(/\S*)?$")] | None = None


class MetaWebhook(BaseModel):
    """What Meta's webhooks need (docs/webhooks.md#whatsapp-messenger-instagram): the app
    secret that signs them and the verify token of the subscription handshake."""

    app_secret: SecretStr | None = None
    verify_token: SecretStr | None = None


class WhatsAppChannel(ChannelBase, MetaWebhook):
    """WhatsApp Cloud API number."""

    type: Literal[ChannelType.WHATSAPP]
    phone_number_id: str
    access_token: SecretStr


class MessengerChannel(ChannelBase, MetaWebhook):
    """Facebook Messenger page."""

    type: Literal[ChannelType.MESSENGER]
    page_id: str
    page_access_token: SecretStr


class InstagramChannel(ChannelBase, MetaWebhook):
    """Instagram professional account."""

    type: Literal[ChannelType.INSTAGRAM]
    page_id: str
    access_token: SecretStr


class TelegramChannel(ChannelBase):
    """Telegram bot."""

    type: Literal[ChannelType.TELEGRAM]
    bot_token: SecretStr
    #: The ``secret_token`` given to setWebhook, sent back in every webhook call's header.
    webhook_secret: SecretStr | None = None

    @field_validator("webhook_secret")
    @classmethod
    def _secret_token(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is not None and not _SECRET_TOKEN.match(secret.get_secret_value()):
            raise ValueError("webhook_secret must be 1 to 256 of A-Z, a-z, 0-9, _ and -")
        return secret


class TwilioSmsChannel(ChannelBase):
    """Twilio Programmable Messaging."""

    type: Literal[ChannelType.TWILIO_SMS]
    account_sid: str
    auth_token: SecretStr
    from_number: str | None = None
    messaging_service_sid: str | None = None


class SmtpChannel(ChannelBase):
    """An SMTP server."""

    type: Literal[ChannelType.EMAIL_SMTP]
    host: str
    port: int = 587
    username: str | None = None
    password: SecretStr | None = None
    from_address: str
    security: Literal["starttls", "tls", "none"] = "starttls"


class SendGridChannel(ChannelBase):
    """SendGrid v3 mail send."""

    type: Literal[ChannelType.SENDGRID]
    api_key: SecretStr
    from_address: str
    #: The Event Webhook's verification key (base64 DER, as SendGrid shows it, or PEM).
    event_public_key: str | None = None

    @field_validator("event_public_key")
    @classmethod
    def _ec_key(cls, key: str | None) -> str | None:
        if key is not None:
            from herald.config.keys import load_ec_public_key

            load_ec_public_key(key)
        return key


class LineChannel(ChannelBase):
    """LINE Messaging API channel."""

    type: Literal[ChannelType.LINE]
    channel_access_token: SecretStr
    #: The channel secret that signs LINE's webhook calls.
    channel_secret: SecretStr | None = None


class ViberChannel(ChannelBase):
    """Viber bot."""

    type: Literal[ChannelType.VIBER]
    auth_token: SecretStr
    sender_name: Annotated[str, Field(max_length=28)]


class CustomChannel(ChannelBase):
    """A webhook that follows Standard Webhooks."""

    type: Literal[ChannelType.CUSTOM]
    url: Annotated[str, Field(pattern=r"^https?://[^\s/]+(/\S*)?$")]
    secret: SecretStr

    @field_validator("secret")
    @classmethod
    def _whsec(cls, secret: SecretStr) -> SecretStr:
        value = secret.get_secret_value()
        try:
            key = base64.b64decode(value.removeprefix("whsec_"), validate=True)
        except binascii.Error:
            key = b""
        if not value.startswith("whsec_") or not key:
            raise ValueError("secret must look like whsec_<base64 key>")
        return secret


ChannelConfig = Annotated[
    WhatsAppChannel
    | MessengerChannel
    | InstagramChannel
    | TelegramChannel
    | TwilioSmsChannel
    | SmtpChannel
    | SendGridChannel
    | LineChannel
    | ViberChannel
    | CustomChannel,
    Field(discriminator="type"),
]


class _ChannelsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channels: dict[str, ChannelConfig] = Field(default_factory=dict)


#: The channel types' names, as a channels file writes them.
TYPE_NAMES = tuple(t.value for t in ChannelType)

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand(value: Any, where: str, env: dict[str, str], missing: list[tuple[str, str]]) -> Any:
    """Replace ``${NAME}`` references in every string of ``value``; note unset ones as
    (where, NAME)."""
    if isinstance(value, dict):
        return {
            k: _expand(v, f"{where}.{k}" if where else k, env, missing) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_expand(v, where, env, missing) for v in value]
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                missing.append((where, name))
                return ""
            return env[name]

        return _ENV_REF.sub(sub, value)
    return value


def _problem(error: Any) -> tuple[str, str]:
    """(where, what) of one validation error, the channel type left out of the place and
    the expected types named by value (pydantic shows them as ``<ChannelType...>``)."""
    loc = [str(p) for p in error["loc"]]
    if len(loc) > 3 and loc[0] == "channels" and loc[2] in TYPE_NAMES:
        del loc[2]  # channels.hook.custom.secret -> channels.hook.secret
    what = error["msg"]
    if error["type"] == "union_tag_invalid":
        what = (
            f"type {error['ctx']['tag']!r} is not a channel type (one of {', '.join(TYPE_NAMES)})"
        )
    elif error["type"] == "union_tag_not_found":
        what = f"type is missing (one of {', '.join(TYPE_NAMES)})"
    return ".".join(loc), what


def parse_channels(text: str, env: dict[str, str] | None = None) -> dict[str, ChannelConfig]:
    """Parse a channels TOML document, expanding ``${ENV}`` references; every problem of
    the file (unset variables and invalid fields) is reported at once."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"channels file is not valid TOML: {exc}") from exc
    missing: list[tuple[str, str]] = []
    doc = _expand(doc, "", dict(os.environ) if env is None else env, missing)
    problems = [f"{where} needs ${{{name}}}, which is not set" for where, name in missing]
    tables = doc.get("channels", {})
    if isinstance(tables, dict):
        for channel_id, table in tables.items():
            if isinstance(table, dict):
                table["id"] = channel_id
    try:
        channels = _ChannelsFile.model_validate(doc).channels
    except ValidationError as exc:
        unset = {where for where, _ in missing}  # their "" value's own error says nothing new
        found = [_problem(e) for e in exc.errors(include_url=False, include_input=False)]
        problems += [f"{where}: {what}" for where, what in found if where not in unset]
    else:
        if not problems:
            return channels
    raise ConfigError("invalid channels file: " + "; ".join(problems))


def load_channels(path: Path, env: dict[str, str] | None = None) -> dict[str, ChannelConfig]:
    """Read the channels file; a missing file is an empty set of channels."""
    if not path.exists():
        return {}
    return parse_channels(path.read_text(encoding="utf-8"), env)
