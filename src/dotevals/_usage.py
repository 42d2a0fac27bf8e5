"""Token usage of the model calls a row makes, metered without the user's code passing it on.

The engine opens a meter around each call of the evaluation function (:func:`start`); the
clients dotevals hands out report each response to it (:func:`count`). The meter lives in a
context variable, so concurrent rows (asyncio tasks, worker threads) each count their own.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import Any

from dotevals.results import Usage

__all__ = ["count", "start", "stop", "total"]

_METER: ContextVar[list[Usage] | None] = ContextVar("dotevals_usage_meter", default=None)


def count(response: Any) -> None:
    """Add a response's ``usage`` to the meter of the row being evaluated, if any."""
    meter = _METER.get()
    if meter is not None:
        usage = Usage.from_response(response)
        if usage is not None:
            meter.append(usage)


def start() -> tuple[list[Usage], Token[list[Usage] | None]]:
    """Open a fresh meter for the calls made from here on (and the tasks started here).

    Returns the meter and the token that :func:`stop` takes to close it.
    """
    meter: list[Usage] = []
    return meter, _METER.set(meter)


def stop(token: Token[list[Usage] | None]) -> None:
    """End the meter :func:`start` opened."""
    _METER.reset(token)


def total(meter: list[Usage]) -> Usage | None:
    """The sum of a meter's usages; None when no call reported any."""
    if not meter:
        return None
    found = meter[0]
    for usage in meter[1:]:
        found = found + usage
    return found
