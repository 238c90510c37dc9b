"""Typed errors from Prepr calls.

The worker decides between retry, dead letter and give up from `retryable` and `retry_after`
alone, so every failure — HTTP status, timeout, refused connection — becomes a PreprError.
Nothing here ever holds the token: only method, path (no query string) and a short body excerpt.
"""
from __future__ import annotations

EXCERPT_CHARS = 500


class PreprError(Exception):
    """A failed Prepr call. str() is safe to log (no token, no query string)."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None,
                 method: str | None = None, path: str | None = None, body_excerpt: str = "",
                 retryable: bool | None = None) -> None:
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.method = method
        self.path = path.split("?", 1)[0] if path else path
        self.body_excerpt = (body_excerpt or "")[:EXCERPT_CHARS]
        self.retryable = is_retryable_status(status) if retryable is None else retryable
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = [self.message]
        if self.method and self.path:
            parts.append(f"({self.method} {self.path})")
        if self.status is not None:
            parts.append(f"status={self.status}")
        if self.retry_after is not None:
            parts.append(f"retry_after={self.retry_after:g}s")
        return " ".join(parts)

    def to_dict(self) -> dict[str, object]:
        """What a trace or dead letter records about the failure."""
        return {"error": type(self).__name__, "message": self.message, "status": self.status,
                "retry_after": self.retry_after, "method": self.method, "path": self.path,
                "body_excerpt": self.body_excerpt, "retryable": self.retryable}


class PreprHTTPError(PreprError):
    """Prepr answered with a non-2xx status."""


class PreprRateLimited(PreprHTTPError):
    """429: Prepr asks us to slow down; `retry_after` says for how long."""


class PreprServerError(PreprHTTPError):
    """5xx: Prepr had a problem; worth retrying."""


class PreprNotFound(PreprHTTPError):
    """404, or a channel / tag reference that matches nothing."""


class PreprClientError(PreprHTTPError):
    """Any other 4xx: our request is wrong; retrying will not help."""


class PreprConnectionError(PreprError):
    """No answer: refused, reset, DNS, or timed out."""

    def __init__(self, message: str, **kwargs: object) -> None:
        kwargs.setdefault("retryable", True)
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


def is_retryable_status(status: int | None) -> bool:
    return status is not None and (status == 429 or status >= 500)


def error_class(status: int) -> type[PreprHTTPError]:
    if status == 429:
        return PreprRateLimited
    if status == 404:
        return PreprNotFound
    if status >= 500:
        return PreprServerError
    return PreprClientError
