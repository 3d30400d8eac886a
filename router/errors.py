"""The one exception tree of rtk-router.

    RouterError
    ├── SenderError            the caller's fault; answered 4xx, never retried
    │   ├── SignatureError     missing, malformed or wrong signature (401)
    │   ├── PayloadError       authentic but not a usable JSON object (400)
    │   └── BodyTooLarge       over `server.max_body_bytes` (413)
    ├── DependencyError        a dependency failed; `retriable` says if trying again may help
    │   ├── KeyUnavailable     no verification key can be had (503)
    │   ├── PublishError       the broker did not acknowledge in time (503)
    │   ├── AnswerTooLarge     an answer from outside (key document, RTK API) over its limit
    │   ├── BodyTimeout        a request body did not arrive in time (503: a retry may do)
    │   └── RtkApiError        the RealtimeKit REST API answered badly or not at all
    ├── InvalidEvent           an authentic event a handler cannot process: goes to dead-letter
    ├── ConfigError            configuration problems, each `FILE:LINE: dotted.path: message`
    └── UsageError             a command cannot run as given (a taken port, an unusable file)

HTTP statuses are assigned in exactly one place, `router.receiver.status_for`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from router.core.terms import Stage


class RouterError(Exception):
    """Base of every error rtk-router raises on purpose."""


class SenderError(RouterError):
    """The request is at fault; retrying the same request cannot help."""


class SignatureError(SenderError):
    """The one signature error: every failure inside verification becomes this."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PayloadError(SenderError):
    """Authentic, but not a JSON object with a string `event`."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BodyTooLarge(SenderError):
    """The body exceeds the configured limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"body larger than {limit} bytes")
        self.limit = limit


class DependencyError(RouterError):
    """A dependency failed; `retriable` tells whether the same call may succeed later."""

    retriable: bool = True

    def __init__(self, message: str, *, retriable: bool | None = None) -> None:
        super().__init__(message)
        if retriable is not None:
            self.retriable = retriable


class KeyUnavailable(DependencyError):
    """No verification key is loaded and none could be fetched."""


class AnswerTooLarge(DependencyError):
    """An answer read from outside exceeds its size limit; the message names the limit."""

    def __init__(self, what: str, limit: int, setting: str) -> None:
        super().__init__(f"{what} is larger than {setting} ({limit} bytes)")
        self.limit = limit


class BodyTimeout(DependencyError):
    """A request's body did not arrive within `server.body_timeout_seconds`."""


class PublishError(DependencyError):
    """The broker did not acknowledge a message in time."""


class RtkApiError(DependencyError):
    """The RealtimeKit API failed; `status` is the HTTP status, or None for a transport error."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None,
        retriable: bool,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, retriable=retriable)
        self.status = status
        self.retry_after = retry_after


class InvalidEvent(RouterError):
    """An authentic event that cannot be processed as its type requires: dead-letter it."""

    def __init__(self, message: str, *, stage: Stage) -> None:
        super().__init__(message)
        self.stage = stage


class ConfigError(RouterError):
    """One or more configuration problems, each already formatted as `FILE:LINE: path: message`."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


class UsageError(RouterError):
    """A command cannot do what it was asked, as asked: a port already taken, a file that
    cannot be read or used. The operator changes the command or the configuration (exit 2)."""
