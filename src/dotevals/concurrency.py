"""Concurrency strategies: how many rows of an evaluation are in flight at once.

The engine asks a strategy for its current ``limit`` before it starts a row and tells it how
each call went; a strategy never runs anything itself.

The names of dotevals 0.26 / 0.28 work as they were written there: ``SlidingWindow(
max_concurrency=N)`` is a fixed limit, ``Sequential()`` and ``AsyncSequential()`` run one row at
a time, and ``Adaptive`` also takes the original's keyword arguments (``initial_concurrency``,
``min_concurrency``, ``max_concurrency``, ...; see :class:`Adaptive`).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import math
import statistics
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Final, Protocol, TypeAlias, runtime_checkable

from dotevals.errors import ConfigurationError

__all__ = [
    "DEFAULT_MAX_CONCURRENCY",
    "Adaptive",
    "AsyncConcurrencyStrategy",
    "AsyncSequential",
    "ConcurrencyStrategy",
    "Fixed",
    "Sequential",
    "SlidingWindow",
    "Slots",
    "SyncConcurrencyStrategy",
    "capped",
    "resolve_strategy",
]

#: The ceiling of the default adaptive strategy (``--max-concurrency``).
DEFAULT_MAX_CONCURRENCY = 256
#: The initial limit of the adaptive strategy.
DEFAULT_INITIAL_CONCURRENCY = 16
_MAX_HISTORY = 1000
#: Latencies within a millisecond of each other count as equal (timer noise, fast servers).
_LATENCY_SLACK = 0.001
#: Clock readings this close count as the same moment (float rounding of ``now - latency``).
_CLOCK_SLACK = 1e-6
#: The fewest calls kept queued beyond the knee.
_MIN_QUEUE = 2.0
#: After start-up, a quarter more in flight "pays" while throughput beats that of every
#: smaller limit by this factor (measured: windows of a few dozen calls vary by 10%).
_PAYS = 1.2
#: The fewest calls a share of throttles is judged over.
_THROTTLE_WINDOW = 32
#: A limit whose throughput is within this factor of the best is as good (the floor).
_NEAR_BEST = 1.1
_logger = logging.getLogger(__name__)
#: dotevals 0.26 ``Adaptive`` keyword arguments and the parameters they set here.
_ADAPTIVE_ALIASES: Final = {
    "initial_concurrency": "initial",
    "min_concurrency": "minimum",
    "max_concurrency": "maximum",
    "adaptation_interval": "cooldown",
    "error_backoff_factor": "cut",
    "throughput_window": "min_window",
}
#: dotevals 0.26 ``Adaptive`` keyword arguments that are accepted and have no equivalent here.
_ADAPTIVE_IGNORED: Final = frozenset(
    {"increase_threshold", "decrease_threshold", "stability_window"}
)


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


class AsyncSequential(Sequential):
    """One call at a time, under the name dotevals 0.26 gave it for async functions."""


class SlidingWindow(Fixed):
    """dotevals 0.26's fixed window: at most ``max_concurrency`` calls in flight.

    Args:
        max_concurrency: the limit (10 by default, as in the original).
    """

    def __init__(self, max_concurrency: int = 10) -> None:
        super().__init__(max_concurrency)
        self.max_concurrency = max_concurrency


def _original_adaptive_args(given: Mapping[str, float]) -> dict[str, float]:
    """Our parameter names for dotevals 0.26's ``Adaptive`` keyword arguments.

    Raises:
        TypeError: an argument that neither version takes.
    """
    unknown = sorted(set(given) - set(_ADAPTIVE_ALIASES) - _ADAPTIVE_IGNORED)
    if unknown:
        raise TypeError(f"Adaptive() got unexpected keyword argument(s) {unknown}")
    return {_ADAPTIVE_ALIASES[k]: v for k, v in given.items() if k in _ADAPTIVE_ALIASES}


class Adaptive:
    """A limit that finds the throughput knee of a server, and backs off when told to.

    The limit is judged by latency, as TCP Vegas and Netflix's gradient limiters judge a
    connection by its round-trip time. After each window of successful calls (as many as the
    limit in start-up, half of it after; at least ``min_window``; counting only calls started
    after the limit last changed, and after start-up only those started one median latency or
    more after, once the calls in flight are those of the new limit) the
    window's median latency is compared with the no-load latency: the lowest window median
    seen, measured while few calls were in flight. Throughput is measured (calls completed per
    second while the window filled, every call counted) and noted for each limit; Little's
    law (the limit over the median) would overstate it when latencies are skewed, as they are
    when the client's CPU is the bottleneck.

    * **Start-up:** while the median stays within ``latency_tolerance`` (x1.15) of the
      no-load latency (more calls in flight are served as fast as fewer), the limit is
      multiplied by ``growth`` (x2). The tolerance is tight because going past the knee
      costs more than the time it takes to reach it: an HTTP client keeps the connections
      the crowd opened (httpx scans them all on every request), so a client that was once
      at 64 in flight stays slower at 32.
    * **At the knee** (the first window slower than that, or after any throttle) the limit
      follows ``limit * no_load / median + queue``, where ``queue`` is ``slow_growth - 1``
      (a quarter) of the limit, at least 2. By Little's law ``limit / median`` is the
      throughput, so the first term is the number of calls the server completes in one
      no-load latency (the bandwidth-delay product of BBR); ``queue`` more are kept waiting
      so the server never idles. When more in flight only adds latency (a server whose batch
      is full, a client whose CPU is the bottleneck) the limit comes back down to the knee
      plus that queue. While more in flight still raises throughput by 20% it grows by
      ``slow_growth`` (a quarter) a window instead. It never falls by more than half in one
      window, nor below the smallest limit whose throughput was within 10% of the best
      measured (at or below the current limit).

    Throttles (HTTP 429, an overloaded server) are judged by their share of the calls in the
    current window (the limit, at least 32 calls), so that a background rate of throttling
    (a shared API key, a provider shedding load at random) does not collapse the limit:
    above ``throttle_tolerance`` (20%) the limit is cut by ``cut`` (x0.5), at most once per
    ``cooldown`` seconds, since a burst of in-flight calls is answered 429 together, and
    successes are not counted for ``cooldown`` seconds after. Below that share the limit goes
    on adapting: a rate limit shows itself as a share of throttles that climbs as the limit
    grows, until it crosses the tolerance and cuts. Another transient error discards the
    current window. The limit stays within
    ``[minimum, maximum]``; :meth:`history` keeps each change with its time.

    Args:
        initial: the limit to start with.
        maximum: the ceiling (``--max-concurrency``).
        minimum: the floor.
        cooldown: seconds between cuts, and without throttling before adapting resumes.
        growth: the growth factor per window during start-up.
        slow_growth: the growth factor per window after the knee or a throttle; its excess
            over 1 is the share of the limit kept queued at the knee.
        cut: the factor applied on a throttle.
        latency_tolerance: how many times the no-load latency still counts as "holds" during
            start-up.
        throttle_tolerance: the share of throttled calls in a window above which the limit is
            cut.
        min_window: the fewest successes a decision is based on.
        clock: the monotonic clock (tests pass a fake one).
        **original: dotevals 0.26's keyword arguments, mapped onto the parameters above:
            ``initial_concurrency`` (``initial``), ``min_concurrency`` (``minimum``),
            ``max_concurrency`` (``maximum``), ``adaptation_interval`` (``cooldown``),
            ``error_backoff_factor`` (``cut``), ``throughput_window`` (``min_window``); they
            win over the parameters they map to. ``increase_threshold``,
            ``decrease_threshold`` and ``stability_window`` are accepted and have no effect.
    """

    def __init__(
        self,
        initial: int = DEFAULT_INITIAL_CONCURRENCY,
        maximum: int = DEFAULT_MAX_CONCURRENCY,
        minimum: int = 1,
        cooldown: float = 2.0,
        *,
        growth: float = 2.0,
        slow_growth: float = 1.25,
        cut: float = 0.5,
        latency_tolerance: float = 1.15,
        throttle_tolerance: float = 0.2,
        min_window: int = 8,
        clock: Callable[[], float] = time.monotonic,
        **original: float,
    ) -> None:
        mapped = _original_adaptive_args(original)
        initial = int(mapped.get("initial", initial))
        maximum = int(mapped.get("maximum", maximum))
        minimum = int(mapped.get("minimum", minimum))
        cooldown = mapped.get("cooldown", cooldown)
        cut = mapped.get("cut", cut)
        min_window = int(mapped.get("min_window", min_window))
        if not (growth > 1 and slow_growth > 1 and 0 < cut < 1 and latency_tolerance >= 1):
            raise ConfigurationError(
                "Adaptive needs growth > 1, slow_growth > 1, 0 < cut < 1, latency_tolerance >= 1"
            )
        self.maximum = max(1, maximum)
        self.minimum = max(1, min(minimum, self.maximum))
        self.cooldown = cooldown
        self.growth = growth
        self.slow_growth = slow_growth
        self.cut = cut
        self.latency_tolerance = latency_tolerance
        self.throttle_tolerance = throttle_tolerance
        self._throttles = 0
        self._outcomes = 0
        self.min_window = max(1, min_window)
        self._clock = clock
        self._start = clock()
        self._limit = self._clamp(initial)
        self._window: list[float] = []
        #: Successes counted so far, and the moment and count at the window's first sample.
        self._done = 0
        self._window_from: tuple[float, int] | None = None
        self._no_load: float | None = None
        #: The latest throughput (calls per second, by Little's law) measured at each limit.
        self._rates: dict[int, float] = {}
        self._startup = True
        #: Calls started before this moment ran (partly) under an earlier limit.
        self._settled_at = -math.inf
        self._median = 0.0
        self._last_cut = -math.inf
        self._quiet_from = -math.inf
        self._history: list[tuple[float, int]] = [(0.0, self._limit)]

    @property
    def limit(self) -> int:
        """The current limit."""
        return self._limit

    @property
    def no_load_latency(self) -> float | None:
        """The lowest window median latency seen (seconds), None before the first window."""
        return self._no_load

    def _clamp(self, value: int) -> int:
        return max(self.minimum, min(value, self.maximum))

    def _set(self, value: int) -> None:
        value = self._clamp(value)
        self._window.clear()  # latencies measured under the old limit say nothing new
        if value == self._limit:
            return
        now = self._clock()
        self._limit = value
        # calls started sooner met the old crowd; start-up takes that risk to grow fast
        self._settled_at = now if self._startup else now + self._median
        self._history.append((round(now - self._start, 3), value))
        if len(self._history) > _MAX_HISTORY:
            del self._history[1]  # keep the start and the most recent changes

    def on_success(self, latency: float) -> None:
        """Count a success; at the end of a window, move the limit by its median latency.

        Args:
            latency: seconds the call took. A call that started before the limit last
                changed is not counted: it ran under the old limit.
        """
        now = self._clock()
        self._done += 1
        self._outcomes += 1
        if self._outcomes >= self._window_size():  # throttles are a share of recent calls
            self._outcomes = self._throttles = 0
        if now < self._quiet_from or now - latency < self._settled_at - _CLOCK_SLACK:
            return
        if not self._window:
            self._window_from = (now, self._done)
        self._window.append(max(0.0, latency))
        if len(self._window) < self._sample_size():
            return
        median = self._median = statistics.median(self._window)
        rate = self._throughput(now, median)
        self._window.clear()
        no_load = self._no_load = median if self._no_load is None else min(self._no_load, median)
        ratio = (median + _LATENCY_SLACK) / (no_load + _LATENCY_SLACK)
        gain = self._record_rate(rate)
        _logger.debug(
            "concurrency: %d in flight, median %.4f s (x%.2f no-load), %.0f calls/s",
            *(self._limit, median, ratio, rate),
        )
        if self._startup and ratio <= self.latency_tolerance:
            self._set(max(self._limit + 1, int(self._limit * self.growth)))
            return
        if self._startup:
            _logger.debug("concurrency: knee near %d in flight (latency x%.2f)", self._limit, ratio)
        self._startup = False
        if gain > _PAYS:
            self._set(max(self._limit + 1, int(self._limit * self.slow_growth)))
        else:
            self._set(max(self._gradient_limit(ratio), self._rate_floor()))

    def _throughput(self, now: float, median: float) -> float:
        """Successes per second after the window's first sample, every call counted.

        Measured, not inferred: Little's law (the limit over the median latency) overstates it
        when latencies are skewed, as a client short of CPU makes them. A window that took
        less than half a latency to fill (calls completing together) falls back to the law.
        """
        since, done = self._window_from or (now, self._done)
        elapsed = now - since
        if elapsed < median / 2 or elapsed <= 0:
            return self._limit / (median + _LATENCY_SLACK)
        return (self._done - done) / elapsed

    def _record_rate(self, rate: float) -> float:
        """Note the throughput at this limit; how many times the best of smaller limits it is."""
        below = max((r for n, r in self._rates.items() if n < self._limit), default=math.inf)
        self._rates[self._limit] = rate
        return rate / below

    def _rate_floor(self) -> int:
        """The smallest limit (up to this one) whose throughput was within 10% of the best."""
        rates = {n: r for n, r in self._rates.items() if n <= self._limit}
        best = max(rates.values())
        return min(n for n, r in rates.items() if r * _NEAR_BEST >= best)

    def _gradient_limit(self, ratio: float) -> int:
        """What the server completes in one no-load latency, plus a queue (see the class)."""
        limit = self._limit
        queue = max(_MIN_QUEUE, (self.slow_growth - 1) * limit)
        return max(limit // 2, round(limit / ratio + queue))

    def _window_size(self) -> int:
        """The calls a throttle share is judged over: at least 32, so that a background
        rate of throttling (10%) seldom looks like 20% by chance (1 window in 20 at 32 calls,
        1 in 7 at 16), while a real limit, which throttles most calls at once, still cuts
        after a handful."""
        return max(self.min_window, self._limit, _THROTTLE_WINDOW)

    def _sample_size(self) -> int:
        """The successes a latency decision is based on, at least ``min_window``.

        In start-up, as many as the limit: the first to complete after a change are the
        fastest of the new crowd, so a smaller sample would read headroom that is not there.
        After it, half the limit, from calls started once the old crowd is gone.
        """
        return max(self.min_window, self._limit if self._startup else self._limit // 2)

    def on_throttle(self) -> None:
        """Count a throttle; cut the limit (at most once per cooldown) when they are many."""
        now = self._clock()
        self._throttles += 1
        self._outcomes += 1
        if self._throttles <= self.throttle_tolerance * self._window_size():
            return
        self._throttles = self._outcomes = 0
        self._startup = False  # a limit was found: approach it slowly from now on
        self._quiet_from = now + self.cooldown
        if now - self._last_cut >= self.cooldown:
            self._last_cut = now
            before = self._limit
            self._set(int(before * self.cut))
            if self._limit != before:
                _logger.info("concurrency: throttled, limit cut from %d to %d", before, self._limit)

    def on_error(self) -> None:
        """Discard the current window: no growth on evidence that includes a failure."""
        self._window.clear()

    def cap(self, maximum: int) -> None:
        """Lower the ceiling to ``maximum`` (never raise it); the limit follows at once."""
        if maximum >= self.maximum:
            return
        self.maximum = max(1, maximum)
        self.minimum = min(self.minimum, self.maximum)
        self._limit = self._clamp(self._limit)
        self._window.clear()
        self._history = _clamped_history(self._history, self.maximum)  # as if always there

    def _capped_copy(self, maximum: int) -> Adaptive:
        """A copy of this strategy with its ceiling lowered to ``maximum``; this one is unchanged.

        The copy shares the clock (a test's fake clock keeps driving it) and starts from this
        strategy's state: its limit, best latencies and history.
        """
        clone = copy.copy(self)
        clone._window = list(self._window)
        clone._history = list(self._history)
        clone._rates = dict(self._rates)
        clone.cap(maximum)
        return clone

    def history(self) -> list[tuple[float, int]]:
        """``(seconds since start, limit)`` at the start and at each change (the last 1000)."""
        return list(self._history)


class _Capped:
    """Any strategy, its limit (and history) held at or below a ceiling."""

    def __init__(self, inner: ConcurrencyStrategy, maximum: int) -> None:
        self.inner = inner
        self.maximum = maximum

    @property
    def limit(self) -> int:
        """The strategy's limit, at most the ceiling."""
        return max(1, min(self.inner.limit, self.maximum))

    def on_success(self, latency: float) -> None:
        """Passed on to the strategy."""
        self.inner.on_success(latency)

    def on_throttle(self) -> None:
        """Passed on to the strategy."""
        self.inner.on_throttle()

    def on_error(self) -> None:
        """Passed on to the strategy."""
        self.inner.on_error()

    def history(self) -> list[tuple[float, int]]:
        """The strategy's history, each limit at most the ceiling, repeats left out."""
        return _clamped_history(self.inner.history(), self.maximum)


def _clamped_history(history: list[tuple[float, int]], maximum: int) -> list[tuple[float, int]]:
    """``history`` with each limit held within ``[1, maximum]``, repeated limits left out."""
    out: list[tuple[float, int]] = []
    for at, limit in history:
        limit = max(1, min(limit, maximum))
        if not out or out[-1][1] != limit:
            out.append((at, limit))
    return out


def capped(strategy: ConcurrencyStrategy, maximum: int) -> ConcurrencyStrategy:
    """``strategy`` never going above ``maximum`` calls in flight (``--max-concurrency``).

    The strategy given is never changed, so that one object shared by several evaluations
    (``ForEach(concurrency=...)``, a module-level strategy) keeps no ceiling of an earlier one.
    An :class:`Adaptive` above the ceiling is copied with its ``maximum`` lowered (so its cuts
    and growth work within the ceiling); one within it, and a :class:`Fixed` within it, are
    returned as they are; any other strategy is wrapped so that its ``limit`` is read through
    the ceiling.
    """
    ceiling = max(1, maximum)
    if isinstance(strategy, Adaptive):
        return strategy if strategy.maximum <= ceiling else strategy._capped_copy(ceiling)
    if isinstance(strategy, Fixed) and strategy.limit <= ceiling:
        return strategy
    return _Capped(strategy, ceiling)


class Slots:
    """A semaphore whose size follows a strategy's current limit (read at each acquire).

    The limit may fall below the slots held: nobody new gets in until enough are released.
    """

    def __init__(self, strategy: ConcurrencyStrategy) -> None:
        self.strategy = strategy
        self._used = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def used(self) -> int:
        """Slots held now."""
        return self._used

    async def acquire(self) -> None:
        """Wait for a slot (first come, first served)."""
        if self._used < self.strategy.limit and not self._waiters:
            self._used += 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # granted just as it was cancelled: hand it on
            raise

    def release(self) -> None:
        """Give a slot back and let waiters in up to the current limit."""
        self._used -= 1
        while self._waiters and self._used < self.strategy.limit:
            fut = self._waiters.popleft()
            if not fut.done():
                self._used += 1
                fut.set_result(None)

    @contextlib.asynccontextmanager
    async def lent(self) -> AsyncIterator[None]:
        """Give the caller's slot back for the block (a retry's sleep), take one again after.

        When the wait for the slot again is cancelled, the slot still counts as held: the
        caller releases the slot it believes it holds, as after any other exit.
        """
        self.release()
        try:
            yield
        finally:
            try:
                await self.acquire()
            except asyncio.CancelledError:
                self._used += 1
                raise


#: dotevals 0.26's names for the strategies of sync and of async functions (type aliases).
SyncConcurrencyStrategy: TypeAlias = Sequential
AsyncConcurrencyStrategy: TypeAlias = SlidingWindow | Adaptive | AsyncSequential


def resolve_strategy(
    value: ConcurrencyStrategy | int | str | None,
    *,
    is_async: bool,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
) -> ConcurrencyStrategy:
    """The strategy an option names: a strategy, a number, ``"adaptive"`` or ``"sequential"``.

    Args:
        value: a strategy (held at ``max_concurrency`` by :func:`capped`, which never changes
            the object given), a positive number or numeric string (a :class:`Fixed` limit,
            capped at ``max_concurrency``),
            ``"adaptive"`` (or ``"auto"``), ``"sequential"``, or None for the default.
        is_async: whether rows can run concurrently (an async function, or a sync one given
            ``threads=N``). The default is :class:`Adaptive` for those and
            :class:`Sequential` for plain sync functions, which the engine runs inline.
        max_concurrency: the ceiling of any limit (``--max-concurrency``).

    Returns:
        The strategy to run with.

    Raises:
        ConfigurationError: ``value`` names no strategy, or a limit below 1.
    """
    ceiling = max(1, max_concurrency)
    if isinstance(value, ConcurrencyStrategy):
        return capped(value, ceiling)
    if value is None:
        return Adaptive(maximum=ceiling) if is_async else Sequential()
    if isinstance(value, int) and not isinstance(value, bool):
        return Fixed(min(value, ceiling))
    if isinstance(value, str):
        name = value.strip().lower()
        if name.isdigit():
            return Fixed(min(int(name), ceiling))
        if name in ("adaptive", "auto"):
            return Adaptive(maximum=ceiling)
        if name == "sequential":
            return Sequential()
    raise ConfigurationError(
        f"unknown concurrency {value!r}: give a number, 'adaptive', 'sequential' or a strategy"
    )
