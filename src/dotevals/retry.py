"""Which errors are worth retrying, and how long to wait: the engine owns the loop."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RetryPolicy", "is_throttle", "is_transient"]

_TRANSIENT_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None) or getattr(exc, "status", None)
    return status if isinstance(status, int) else None


def is_throttle(exc: BaseException) -> bool:
    """Whether ``exc`` says the server is rate limiting (HTTP 429) or overloaded (503)."""
    return _status(exc) in (429, 503)


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is worth retrying: connection errors, timeouts, 408/429/5xx."""
    status = _status(exc)
    if status is not None:
        return status in _TRANSIENT_STATUS
    return isinstance(exc, (ConnectionError, TimeoutError)) or type(exc).__name__ in (
        "APIConnectionError",
        "APITimeoutError",
        "ConnectError",
        "ReadTimeout",
        "ConnectTimeout",
        "RemoteProtocolError",
    )


@dataclass
class RetryPolicy:
    """Retry transient errors up to ``max_retries`` times with exponential backoff."""

    max_retries: int = 3
    initial: float = 0.5
    maximum: float = 30.0

    def delay(self, attempt: int, exc: BaseException) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None to give up."""
        if attempt > self.max_retries or not is_transient(exc):
            return None
        return float(min(self.maximum, self.initial * 2 ** (attempt - 1)))
