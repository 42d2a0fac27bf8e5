"""Which errors are worth retrying, and how long to wait: the engine owns the loop.

:class:`RetryPolicy` answers one question for the engine, ``delay(attempt, exc)``: how many
seconds to wait before trying a row again, or None to record the error now. It is built on
`tenacity <https://tenacity.readthedocs.io>`_: the decision is tenacity's ``stop`` and
``retry`` strategies, the wait is tenacity's exponential backoff plus random jitter, evaluated
on a :class:`tenacity.RetryCallState` that describes the failed attempt.

Transient errors (retried):

* connection errors and timeouts: ``openai.APIConnectionError`` / ``APITimeoutError`` (and
  ``anthropic``'s),
  ``httpx.TransportError`` (and ``httpx2``'s; not ``UnsupportedProtocol`` and
  ``LocalProtocolError``, which are bugs on the calling side),
  ``aiohttp.ClientConnectionError``, and the built-in
  ``ConnectionError`` and ``TimeoutError``;
* HTTP 408, 429 and 5xx from ``openai.APIStatusError.status_code``,
  ``httpx.HTTPStatusError.response.status_code``, ``aiohttp.ClientResponseError.status``, or
  any exception with an integer ``status_code`` attribute (other SDKs shaped like openai's).
  A response header ``x-should-retry: true|false`` overrides the status.

Everything else (400, 401, 403, 404, ``FileNotFoundError``, ``ValueError``, ...) is recorded at
once. The HTTP libraries are never imported here: an exception can only be an ``openai`` or
``httpx`` error when that library is already loaded, so they are looked up in ``sys.modules``.

A provider classifies its own errors by setting attributes on the exception it raises; they win
over the rules above::

    class ModelBusy(Exception):
        dotevals_transient = True   # retry it (False: never retry it)
        dotevals_throttle = True    # optional: it means "slow down" (concurrency is cut)
        retry_after = 2.5           # optional: seconds the server asked to wait

``Retry-After`` (seconds or an HTTP date) and ``retry-after-ms`` response headers, read from
``exc.response.headers`` (or ``exc.headers``), are honoured the same way as ``retry_after``;
every wait is capped at :attr:`RetryPolicy.maximum`.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import tenacity

__all__ = ["RetryPolicy", "is_throttle", "is_transient", "retry_after"]

_RETRY_STATUS = frozenset({408, 429})
_THROTTLE_STATUS = frozenset({429, 503, 529})
_CALLER_BUGS = ("UnsupportedProtocol", "LocalProtocolError")
#: httpx, and httpx2: the API-compatible fork that recent openai releases are built on.
_HTTPX = "httpx httpx2"


# -- classifying -----------------------------------------------------------------------------


def _module_error(module: str, name: str) -> type[BaseException] | None:
    """``module.name`` when ``module`` is already imported and defines that exception."""
    loaded = sys.modules.get(module)
    cls = getattr(loaded, name, None) if loaded is not None else None
    return cls if isinstance(cls, type) and issubclass(cls, BaseException) else None


def _is_instance(exc: BaseException, modules: str, *names: str) -> bool:
    """Whether ``exc`` is one of ``names`` from any of the (space-separated) ``modules``."""
    found = (_module_error(m, n) for m in modules.split() for n in names)
    classes = tuple(c for c in found if c is not None)
    return bool(classes) and isinstance(exc, classes)


def _response(exc: BaseException) -> Any:
    return getattr(exc, "response", None)


def status_of(exc: BaseException) -> int | None:
    """The HTTP status an exception carries, or None.

    Args:
        exc: an error raised by a model call.

    Returns:
        ``status_code`` (openai and SDKs like it), ``response.status_code`` (httpx) or
        ``status`` (aiohttp), whichever is an integer first.
    """
    candidates = (
        getattr(exc, "status_code", None),
        getattr(_response(exc), "status_code", None),
    )
    for value in candidates:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    if _is_instance(exc, "aiohttp", "ClientResponseError"):
        status = getattr(exc, "status", None)
        return status if isinstance(status, int) else None
    return None


def _headers(exc: BaseException) -> Mapping[str, str] | None:
    headers = getattr(_response(exc), "headers", None)
    if headers is None:
        headers = getattr(exc, "headers", None)
    return headers if isinstance(headers, Mapping) else None


def _header(exc: BaseException, name: str) -> str | None:
    headers = _headers(exc)
    if headers is None:
        return None
    value = headers.get(name)
    if value is None:  # a plain dict: compare names case-insensitively
        value = next((v for k, v in headers.items() if str(k).lower() == name), None)
    return None if value is None else str(value)


def _provider_flag(exc: BaseException, name: str) -> bool | None:
    value = getattr(exc, name, None)
    return value if isinstance(value, bool) else None


def _is_connection_error(exc: BaseException) -> bool:
    if _is_instance(exc, "openai anthropic", "APIConnectionError"):  # APITimeoutError included
        return True
    if _is_instance(exc, _HTTPX, "TransportError"):
        return not _is_instance(exc, _HTTPX, *_CALLER_BUGS)
    if _is_instance(exc, "aiohttp", "ClientConnectionError"):
        return True
    return isinstance(exc, (ConnectionError, TimeoutError, asyncio.TimeoutError))


def _is_transient_status(status: int) -> bool:
    return status in _RETRY_STATUS or 500 <= status <= 599


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is worth retrying: connection errors, timeouts, HTTP 408/429/5xx.

    Args:
        exc: an error raised by a model call.

    Returns:
        The exception's own ``dotevals_transient`` flag when it has one; else the rules of
        this module (see its docstring).
    """
    flag = _provider_flag(exc, "dotevals_transient")
    if flag is not None:
        return flag
    should_retry = _header(exc, "x-should-retry")
    if should_retry in ("true", "false"):
        return should_retry == "true"
    status = status_of(exc)
    if status is not None:
        return _is_transient_status(status)
    return _is_connection_error(exc)


def is_throttle(exc: BaseException) -> bool:
    """Whether ``exc`` says "slow down": HTTP 429, or 503/529 (the server is overloaded).

    Args:
        exc: an error raised by a model call.

    Returns:
        The exception's own ``dotevals_throttle`` flag when it has one; else whether its
        status is 429, 503 or 529.
    """
    flag = _provider_flag(exc, "dotevals_throttle")
    if flag is not None:
        return flag
    return status_of(exc) in _THROTTLE_STATUS


# -- how long to wait ----------------------------------------------------------------------


def _seconds(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    seconds = float(value)
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _parse_retry_after(text: str) -> float | None:
    """``Retry-After``: delay seconds, or an HTTP date (seconds from now, at least 0)."""
    try:
        return _seconds(float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())


def retry_after(exc: BaseException) -> float | None:
    """Seconds the server (or provider) asked to wait before retrying, or None.

    Args:
        exc: an error raised by a model call.

    Returns:
        The exception's ``retry_after`` attribute when it is a number of seconds; else the
        ``retry-after-ms`` header (milliseconds), else ``Retry-After`` (seconds or HTTP date).
    """
    own = _seconds(getattr(exc, "retry_after", None))
    if own is not None:
        return own
    millis = _header(exc, "retry-after-ms")
    if millis is not None:
        try:
            seconds = _seconds(float(millis) / 1000)
        except ValueError:
            seconds = None
        if seconds is not None:
            return seconds
    header = _header(exc, "retry-after")
    return None if header is None else _parse_retry_after(header.strip())


class _WaitRetryAfter(tenacity.wait.wait_base):
    """Tenacity wait strategy: the server's ``Retry-After`` when given, else ``fallback``."""

    def __init__(self, fallback: tenacity.wait.wait_base) -> None:
        self.fallback = fallback

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        hint = retry_after(exc) if isinstance(exc, BaseException) else None
        return self.fallback(retry_state) if hint is None else hint


def _never_called() -> None:
    """Stands in for the wrapped function of a RetryCallState; the engine makes the calls."""


@dataclass(frozen=True)
class RetryPolicy:
    """Retry transient errors up to ``max_retries`` times with exponential backoff and jitter.

    The n-th retry waits ``uniform(0, min(maximum, initial * 2 ** (n - 1)))`` seconds ("full
    jitter", which spreads retries out and keeps the tail short), or, when ``jitter`` is given,
    ``min(maximum, initial * 2 ** (n - 1)) + uniform(0, jitter)``; or what the server asked for
    (``Retry-After``), capped at ``maximum``.

    The defaults wait at most 0.1, 0.2, 0.4, 0.8 and 1.6 s: a row keeps trying for up to about
    3 s before its error is recorded, yet most retries go out within a few tenths of a
    second, so that a few unlucky rows do not hold up the end of a run. Load on a throttling
    server is reduced by the adaptive concurrency limit, not by long sleeps; a server that
    says how long to wait (``Retry-After``, ``retry-after-ms``) is obeyed.

    Attributes:
        max_retries: retries after the first attempt (0 disables retrying).
        initial: the first wait, in seconds, before jitter.
        maximum: the cap on any wait, in seconds.
        jitter: at most this many random seconds added to each exponential wait; None for
            full jitter.
    """

    max_retries: int = 5
    initial: float = 0.1
    maximum: float = 30.0
    jitter: float | None = None
    _retrying: tenacity.Retrying = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        backoff: tenacity.wait.wait_base
        if self.jitter is None:
            backoff = tenacity.wait_random_exponential(multiplier=self.initial, max=self.maximum)
        else:
            backoff = tenacity.wait_exponential(multiplier=self.initial, max=self.maximum)
            backoff = backoff + tenacity.wait_random(0, self.jitter)
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(max(0, self.max_retries) + 1),
            retry=tenacity.retry_if_exception(is_transient),
            wait=_WaitRetryAfter(backoff),
        )
        object.__setattr__(self, "_retrying", retrying)

    def _state(self, attempt: int, exc: BaseException) -> tenacity.RetryCallState:
        state = tenacity.RetryCallState(self._retrying, _never_called, (), {})
        state.attempt_number = attempt
        state.outcome = tenacity.Future.construct(attempt, exc, True)
        return state

    def should_retry(self, attempt: int, exc: BaseException) -> bool:
        """Whether to try again after ``attempt`` attempts, the last failing with ``exc``.

        Args:
            attempt: attempts made so far (1 after the first failure).
            exc: the error of the last attempt.
        """
        state = self._state(attempt, exc)
        return bool(self._retrying.retry(state)) and not self._retrying.stop(state)

    def delay(self, attempt: int, exc: BaseException) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None to give up.

        Args:
            attempt: attempts made so far (1 after the first failure).
            exc: the error of the last attempt.

        Returns:
            None when ``exc`` is not transient or ``max_retries`` retries were made; else the
            wait, at most :attr:`maximum` seconds.
        """
        state = self._state(attempt, exc)
        if not self._retrying.retry(state) or self._retrying.stop(state):
            return None
        wait = self._retrying.wait(state)
        return float(max(0.0, min(self.maximum, wait)))
