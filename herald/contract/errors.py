"""Herald's one error tree.

Every failure a send can meet is one of these, and each carries the outcome
``code`` of the public contract (docs/contract.md#outcome-events), whether it is
``retryable``, and the provider's own code when a provider answered::

    HeraldError                      root; never raised itself
    ├── ConfigError                  the settings or the channels file are unusable
    ├── FileRefused                  a file cannot join the file library (too large, quota)
    ├── Throttled                    the fleet's rate limit asks for a wait (never a failure)
    ├── WebhookRefused               a provider's webhook call is refused (its HTTP status)
    │   ├── Unverified               403: the call's signature or token does not verify
    │   │   └── Unsigned             401: the call carries no signature or token at all
    │   ├── MalformedWebhook         400: verified, but not the provider's documented shape
    │   └── WebhookTooLarge          413: the body is over the size cap
    └── SendError                    a job cannot be (or was not) delivered
        ├── PermanentError           retrying cannot help: fail the job now
        │   ├── InvalidJob           invalid_job: the job breaks the contract
        │   ├── UnknownChannel       unknown_channel: names no configured channel
        │   ├── NoChannel            no_channel: the contact has no usable channel
        │   ├── WindowClosed         window_closed: the messaging window is closed
        │   ├── AuthFailed           auth_failed: credentials invalid or expired
        │   ├── RecipientUnavailable recipient_unavailable
        │   ├── InvalidContent       invalid_content: the rendered message is refused
        │   ├── QuotaExceeded        rate_limited, but a quota: do not retry
        │   ├── Expired              expired: the job's Celery expires passed before it was sent
        │   └── InternalError        internal: a bug of Herald's
        └── TransientError           worth another attempt later
            ├── RateLimited          rate_limited (may carry the provider's wait hint)
            └── ProviderUnavailable  provider_unavailable: 5xx, timeouts, resets

Messages are for people and never hold a secret: adapters build them from
sanitised text only.
"""

from __future__ import annotations

import copy
from typing import ClassVar, Self


class HeraldError(Exception):
    """Root of every exception Herald raises on purpose."""


class ConfigError(HeraldError):
    """Raised when the settings or the channels file cannot be used."""


class FileRefused(HeraldError):
    """Raised when a file cannot be added to the file library: over the per-file cap, over
    the library's quota, or empty."""


class Throttled(HeraldError):
    """Raised when the fleet-wide rate limit asks for a wait before the next provider call."""

    def __init__(self, wait: float, *, waits: int = 0) -> None:
        super().__init__(f"rate limit: wait {wait:.2f}s")
        #: Seconds until a slot is free.
        self.wait = wait
        #: Short waits this call has already spent for a slot.
        self.waits = waits


class WebhookRefused(HeraldError):
    """Raised when ``herald webhooks`` refuses a call; ``status`` is its HTTP answer.

    The message is for logs and the answer's body: it never holds a secret or the body.
    """

    status: ClassVar[int] = 400


class Unverified(WebhookRefused):
    """Raised when a webhook call's signature, token or timestamp does not verify."""

    status = 403


class Unsigned(Unverified):
    """Raised when a webhook call carries none of the signature or token its provider sends."""

    status = 401


class MalformedWebhook(WebhookRefused):
    """Raised when a verified webhook call is not in its provider's documented shape."""

    status = 400


class WebhookTooLarge(WebhookRefused):
    """Raised when a webhook call's body is over the size cap."""

    status = 413


class SendError(HeraldError):
    """Raised when a job cannot be delivered; carries the outcome error fields."""

    code: ClassVar[str] = "internal"
    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        provider_code: str | None = None,
        retry_after: float | None = None,
        in_doubt: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider_code = provider_code
        #: Seconds the provider asked us to wait (Retry-After and friends).
        self.retry_after = retry_after
        #: The request may have reached the provider (written, then no clear answer).
        self.in_doubt = in_doubt

    def with_message(self, message: str) -> Self:
        """The same error with another message (an error is never edited once raised)."""
        changed = copy.copy(self)
        changed.message = message
        changed.args = (message,)
        return changed

    def as_error(self) -> dict[str, object]:
        """The ``error`` object of an outcome event."""
        return {
            "code": self.code,
            "retryable": self.retryable,
            "message": self.message,
            "provider_code": self.provider_code,
        }


class PermanentError(SendError):
    """Raised when retrying cannot help; the job fails now."""


class TransientError(SendError):
    """Raised when a later attempt may succeed."""

    code = "provider_unavailable"
    retryable = True


class InvalidJob(PermanentError):
    """Raised when a job does not follow the contract (docs/contract.md#the-send-job)."""

    code = "invalid_job"


class UnknownChannel(PermanentError):
    """Raised when a job names a channel that is not in the channels file."""

    code = "unknown_channel"


class NoChannel(PermanentError):
    """Raised when the contact has no identifier on any usable channel."""

    code = "no_channel"


class WindowClosed(PermanentError):
    """Raised when the channel's messaging window forbids this message."""

    code = "window_closed"


class AuthFailed(PermanentError):
    """Raised when the provider refuses our credentials or the account may not send."""

    code = "auth_failed"


class RecipientUnavailable(PermanentError):
    """Raised when the recipient cannot receive messages on this channel."""

    code = "recipient_unavailable"


class InvalidContent(PermanentError):
    """Raised when the rendered message breaks a channel's limits or is refused."""

    code = "invalid_content"


class Expired(PermanentError):
    """Raised when the job's Celery ``expires`` passed before it was sent."""

    code = "expired"


class QuotaExceeded(PermanentError):
    """Raised when a provider quota (not a rate) is exhausted."""

    code = "rate_limited"


class InternalError(PermanentError):
    """Raised when Herald itself failed; the message says what, never a secret."""

    code = "internal"


class RateLimited(TransientError):
    """Raised when the provider (or Herald's shared limiter) asks us to slow down."""

    code = "rate_limited"


class ProviderUnavailable(TransientError):
    """Raised on 5xx answers, timeouts, resets and refused connections."""

    code = "provider_unavailable"
