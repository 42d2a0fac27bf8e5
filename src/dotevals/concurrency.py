"""Concurrency strategies: how many rows of an evaluation are in flight at once.

The engine asks a strategy for its current ``limit`` before it starts a row and tells it how
each call went; a strategy never runs anything itself.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

from dotevals.errors import ConfigurationError

__all__ = [
    "DEFAULT_MAX_CONCURRENCY",
    "Adaptive",
    "ConcurrencyStrategy",
    "Fixed",
    "Sequential",
    "resolve_strategy",
]

#: The ceiling of the default adaptive strategy (``--max-concurrency``).
DEFAULT_MAX_CONCURRENCY = 256


@runtime_checkable
class ConcurrencyStrategy(Protocol):
    """Decides how many calls may be in flight; told how each call went."""

    @property
    def limit(self) -> int:
        """How many calls may be in flight now (>= 1)."""
        ...

    def on_success(self, latency: float) -> None:
        """A call completed in ``latency`` seconds."""

    def on_throttle(self) -> None:
        """A call was rate limited (HTTP 429) or the server said it is overloaded."""

    def on_error(self) -> None:
        """A call failed with another transient error."""

    def history(self) -> list[tuple[float, int]]:
        """``(seconds since start, limit)`` at each change of the limit."""
        ...


class Fixed:
    """At most ``n`` calls in flight."""

    def __init__(self, n: int) -> None:
        if n < 1:
            raise ConfigurationError(f"concurrency must be >= 1, got {n!r}")
        self._n = n

    @property
    def limit(self) -> int:
        """The fixed limit."""
        return self._n

    def on_success(self, latency: float) -> None:
        """Nothing changes."""

    def on_throttle(self) -> None:
        """Nothing changes."""

    def on_error(self) -> None:
        """Nothing changes."""

    def history(self) -> list[tuple[float, int]]:
        """One entry: the fixed limit."""
        return [(0.0, self._n)]


class Sequential(Fixed):
    """One call at a time."""

    def __init__(self) -> None:
        super().__init__(1)


class Adaptive:
    """Start at ``initial``, double while calls succeed, halve on throttling.

    Args:
        initial: the limit to start with.
        maximum: the ceiling (``--max-concurrency``).
        minimum: the floor.
        cooldown: seconds after a cut during which the limit does not grow.
    """

    def __init__(
        self,
        initial: int = 16,
        maximum: int = DEFAULT_MAX_CONCURRENCY,
        minimum: int = 1,
        cooldown: float = 1.0,
    ) -> None:
        self.maximum = max(1, maximum)
        self.minimum = max(1, min(minimum, self.maximum))
        self._limit = max(self.minimum, min(initial, self.maximum))
        self.cooldown = cooldown
        self._start = time.monotonic()
        self._wins = 0
        self._frozen_until = 0.0
        self._history = [(0.0, self._limit)]

    @property
    def limit(self) -> int:
        """The current limit."""
        return self._limit

    def _set(self, value: int) -> None:
        value = max(self.minimum, min(value, self.maximum))
        if value != self._limit:
            self._limit = value
            self._history.append((round(time.monotonic() - self._start, 3), value))

    def on_success(self, latency: float) -> None:
        """Grow: double once a full window of calls has succeeded."""
        self._wins += 1
        if self._wins >= self._limit and time.monotonic() >= self._frozen_until:
            self._wins = 0
            self._set(self._limit * 2)

    def on_throttle(self) -> None:
        """Halve and hold for the cooldown."""
        self._wins = 0
        now = time.monotonic()
        if now >= self._frozen_until:
            self._set(self._limit // 2)
        self._frozen_until = now + self.cooldown

    def on_error(self) -> None:
        """Stop growing for a while."""
        self._wins = 0

    def history(self) -> list[tuple[float, int]]:
        """The limit over time."""
        return list(self._history)


def resolve_strategy(
    value: ConcurrencyStrategy | int | str | None,
    *,
    is_async: bool,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
) -> ConcurrencyStrategy:
    """The strategy an option names: a strategy, a number, ``"adaptive"`` or ``"sequential"``.

    Async evaluations default to :class:`Adaptive`; sync ones run one row at a time.
    """
    if isinstance(value, ConcurrencyStrategy):
        return value
    if value is None:
        return Adaptive(maximum=max_concurrency) if is_async else Sequential()
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        return Fixed(min(int(value), max_concurrency))
    if value == "adaptive":
        return Adaptive(maximum=max_concurrency)
    if value == "sequential":
        return Sequential()
    raise ConfigurationError(
        f"unknown concurrency {value!r}: give a number, 'adaptive', 'sequential' or a strategy"
    )
