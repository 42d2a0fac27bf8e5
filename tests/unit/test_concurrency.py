"""Concurrency strategies, driven with a fake clock: no sleeping, no wall-clock bounds."""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections.abc import Callable

import pytest

from dotevals.concurrency import (
    DEFAULT_MAX_CONCURRENCY,
    Adaptive,
    ConcurrencyStrategy,
    Fixed,
    Sequential,
    Slots,
    resolve_strategy,
)
from dotevals.errors import ConfigurationError


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


#: Seconds to wait before a window's calls start: the calls of the previous limit are done.
SETTLE = 1.0


def window(strategy: Adaptive, latency: float, clock: FakeClock | None = None) -> None:
    """Complete one window of calls started together, ``latency`` seconds each.

    With a ``clock``, the calls start :data:`SETTLE` seconds after the last one ended.
    """
    if clock is not None:
        clock.advance(SETTLE + latency)
    for _ in range(max(strategy.min_window, strategy.limit)):
        strategy.on_success(latency)


def capacity_server(base: float, capacity: int) -> Callable[[int], float]:
    """Latency of a server that serves ``capacity`` calls at once in ``base`` seconds each."""
    return lambda in_flight: base * max(1.0, in_flight / capacity)


def cpu_bound_client(base: float, cpu: float) -> Callable[[int], float]:
    """Latency when each call costs the client ``cpu`` seconds of one CPU."""
    return lambda in_flight: max(base, in_flight * cpu)


def simulate(
    adaptive: Adaptive, clock: FakeClock, latency_at: Callable[[int], float], rounds: int
) -> list[int]:
    """Rounds of ``limit`` calls started together, ending ``latency_at(limit)`` later.

    Returns:
        The limit after each round.
    """
    limits = []
    for _ in range(rounds):
        in_flight = adaptive.limit
        latency = latency_at(in_flight)
        clock.advance(latency)
        for _ in range(in_flight):
            adaptive.on_success(latency)
        limits.append(adaptive.limit)
    return limits


# -- Fixed and Sequential ------------------------------------------------------------------------


def test_fixed_never_changes() -> None:
    fixed = Fixed(8)
    fixed.on_success(0.1)
    fixed.on_throttle()
    fixed.on_error()
    assert fixed.limit == 8
    assert fixed.history() == [(0.0, 8)]


def test_sequential_is_one_at_a_time() -> None:
    assert Sequential().limit == 1


@pytest.mark.parametrize("n", [0, -3])
def test_fixed_rejects_limits_below_one(n: int) -> None:
    with pytest.raises(ConfigurationError, match="concurrency must be >= 1"):
        Fixed(n)


@pytest.mark.parametrize("strategy", [Fixed(2), Sequential(), Adaptive()])
def test_every_strategy_meets_the_protocol(strategy: ConcurrencyStrategy) -> None:
    assert isinstance(strategy, ConcurrencyStrategy)


# -- Adaptive: growth ------------------------------------------------------------------------


def test_adaptive_starts_at_16(clock: FakeClock) -> None:
    adaptive = Adaptive(clock=clock)
    assert adaptive.limit == 16
    assert adaptive.history() == [(0.0, 16)]


def test_adaptive_doubles_per_window_while_latency_holds(clock: FakeClock) -> None:
    adaptive = Adaptive(clock=clock)
    limits = simulate(adaptive, clock, lambda _: 0.2, rounds=12)
    assert limits[:6] == [32, 64, 128, 256, 256, 256]


def test_adaptive_waits_for_a_full_window(clock: FakeClock) -> None:
    adaptive = Adaptive(clock=clock)
    for _ in range(15):  # in start-up, as many as the limit
        adaptive.on_success(0.2)
    assert adaptive.limit == 16
    adaptive.on_success(0.2)
    assert adaptive.limit == 32


def test_calls_started_under_the_old_limit_are_not_counted(clock: FakeClock) -> None:
    adaptive = Adaptive(clock=clock)
    window(adaptive, 0.2, clock)
    assert adaptive.limit == 32
    clock.advance(0.3)
    for _ in range(64):
        adaptive.on_success(0.4)  # started 0.1 s before the change
    assert adaptive.limit == 32
    window(adaptive, 0.2, clock)
    assert adaptive.limit == 64


def test_after_start_up_calls_among_the_old_crowd_are_not_counted(clock: FakeClock) -> None:
    adaptive = Adaptive(initial=64, clock=clock)
    burst(adaptive, 13)  # a cut: 32, and start-up is over
    clock.advance(adaptive.cooldown)
    window(adaptive, 0.2, clock)
    assert adaptive.limit == 40  # a quarter more
    clock.advance(0.15)
    for _ in range(64):
        adaptive.on_success(0.1)  # started 0.05 s after the change, among the old calls
    assert adaptive.limit == 40
    window(adaptive, 0.2, clock)
    assert adaptive.limit == 50


def test_start_up_keeps_doubling_within_the_latency_tolerance(clock: FakeClock) -> None:
    adaptive = Adaptive(clock=clock)
    window(adaptive, 0.2, clock)
    window(adaptive, 0.22, clock)  # x1.1: within x1.15
    assert adaptive.limit == 64
    window(adaptive, 0.24, clock)  # x1.2: the knee
    assert adaptive.limit < 128


def test_the_knee_of_a_server_at_capacity_is_found_without_overshoot(clock: FakeClock) -> None:
    adaptive = Adaptive(clock=clock)
    limits = simulate(adaptive, clock, capacity_server(0.1, capacity=32), rounds=60)
    assert max(limits) <= 64  # one doubling past the knee, no more
    first_cut = next(i for i, (a, b) in enumerate(itertools.pairwise(limits)) if b < a)
    settled = limits[first_cut + 1 :]
    assert all(32 <= limit <= 48 for limit in settled)  # the knee plus a quarter queued
    assert adaptive.no_load_latency == pytest.approx(0.1)


@pytest.mark.parametrize("capacity", [8, 100])
def test_the_knee_is_found_wherever_it_is(clock: FakeClock, capacity: int) -> None:
    adaptive = Adaptive(initial=4, clock=clock)
    limits = simulate(adaptive, clock, capacity_server(0.05, capacity), rounds=80)
    assert capacity <= limits[-1] <= capacity * 1.5
    assert max(limits) <= 2 * 1.5 * capacity  # start-up stops one doubling past the tolerance


def test_a_cpu_bound_client_brings_the_limit_down(clock: FakeClock) -> None:
    # 4 ms of client CPU a call and 20 ms at the server: nothing gains beyond about 6
    adaptive = Adaptive(clock=clock)
    limits = simulate(adaptive, clock, cpu_bound_client(0.024, 0.004), rounds=40)
    assert limits[-10:] == [limits[-1]] * 10  # settled
    assert 6 <= limits[-1] <= 24


def test_it_keeps_growing_while_throughput_grows_though_latency_rises(clock: FakeClock) -> None:
    # a contended client: latency rises with every call in flight, throughput still grows
    adaptive = Adaptive(clock=clock)
    limits = simulate(adaptive, clock, lambda n: 0.02 * (1 + n / 16), rounds=40)
    # 400 calls/s at 16, 533 at 32, 571 at 40: start-up ends at 32 (latency x1.5), and a
    # quarter more in flight is tried once it brought 20% more (32 over 16), not again after
    assert limits[0] == 32
    assert 40 in limits
    assert all(32 <= limit <= 40 for limit in limits[-20:])


def test_a_server_without_a_knee_keeps_the_maximum(clock: FakeClock) -> None:
    adaptive = Adaptive(clock=clock)
    limits = simulate(adaptive, clock, lambda _: 0.02, rounds=40)
    assert limits[-20:] == [256] * 20


def test_latency_rising_past_the_tolerance_ends_start_up(clock: FakeClock) -> None:
    adaptive = Adaptive(clock=clock)
    window(adaptive, 0.1, clock)  # 16 -> 32
    window(adaptive, 0.1, clock)  # 32 -> 64
    window(adaptive, 0.4, clock)  # 64 at 4x: 64 / 4 + 16 = 32
    assert adaptive.limit == 32
    window(adaptive, 0.1, clock)  # latency holds: a quarter more, no longer doubling
    assert adaptive.limit == 40


def test_one_window_never_more_than_halves_the_limit(clock: FakeClock) -> None:
    adaptive = Adaptive(initial=64, clock=clock)
    window(adaptive, 0.01, clock)
    window(adaptive, 10.0, clock)
    assert adaptive.limit == 64


def spread(adaptive: Adaptive, clock: FakeClock, latency: float, rate: float, calls: int) -> None:
    """``calls`` calls completing one by one at ``rate`` a second, ``latency`` s each."""
    clock.advance(SETTLE + latency)
    for _ in range(calls):
        clock.advance(1 / rate)
        adaptive.on_success(latency)


def test_throughput_is_measured_not_inferred_from_the_median(clock: FakeClock) -> None:
    # a client that completes 320 calls/s whatever is in flight: at 48 in flight the median
    # call looks fast (most are, a few wait long), which Little's law would read as 432/s
    adaptive = Adaptive(initial=32, clock=clock)
    spread(adaptive, clock, 0.1, rate=320, calls=32)  # no-load; start-up doubles
    assert adaptive.limit == 64
    spread(adaptive, clock, 0.2, rate=320, calls=64)  # x2: the knee; 64 / 2 + 16
    assert adaptive.limit == 48
    spread(adaptive, clock, 0.11, rate=320, calls=24)  # half the limit after start-up
    # no gain measured, so no quarter more (60): the gradient, 48 / 1.1 + 12
    assert adaptive.limit == 56


def test_adaptive_median_ignores_a_few_slow_calls(clock: FakeClock) -> None:
    adaptive = Adaptive(clock=clock)
    for i in range(16):
        adaptive.on_success(5.0 if i < 3 else 0.2)
    assert adaptive.limit == 32


def test_adaptive_never_exceeds_its_maximum(clock: FakeClock) -> None:
    adaptive = Adaptive(maximum=40, clock=clock)
    for _ in range(5):
        window(adaptive, 0.1, clock)
    assert adaptive.limit == 40


def test_adaptive_clamps_its_start(clock: FakeClock) -> None:
    assert Adaptive(maximum=4, clock=clock).limit == 4
    assert Adaptive(initial=0, clock=clock).limit == 1
    assert Adaptive(initial=2, minimum=5, clock=clock).limit == 5
    assert Adaptive(maximum=0, clock=clock).limit == 1


def test_adaptive_grows_with_zero_latency(clock: FakeClock) -> None:
    adaptive = Adaptive(clock=clock)
    window(adaptive, 0.0, clock)
    window(adaptive, 0.0001, clock)  # timer noise
    assert adaptive.limit == 64


# -- Adaptive: throttling and errors ------------------------------------------------------------


def burst(adaptive: Adaptive, n: int) -> None:
    for _ in range(n):
        adaptive.on_throttle()


def test_a_burst_of_throttles_halves_the_limit(clock: FakeClock) -> None:
    adaptive = Adaptive(clock=clock)  # shares judged over 32 calls: more than 6.4 cut
    burst(adaptive, 6)
    assert adaptive.limit == 16
    adaptive.on_throttle()
    assert adaptive.limit == 8


def test_background_throttling_seldom_reads_as_a_rate_limit(clock: FakeClock) -> None:
    # one call in ten throttled at random from 16 in flight: judged over 32 calls, a share
    # above 20% comes by chance in about 1 start in 200 (over 16 calls: 1 in 15)
    rng = random.Random(7)
    cuts = 0
    for _ in range(400):
        adaptive = Adaptive(clock=clock)
        for _ in range(64):
            if rng.random() < 0.1:
                adaptive.on_throttle()
            else:
                adaptive.on_success(0.02)
        cuts += any(limit < 16 for _, limit in adaptive.history())
    assert cuts <= 8  # about 2 expected; over 20 when judged over 16 calls


def test_a_burst_of_throttles_cuts_once_per_cooldown(clock: FakeClock) -> None:
    adaptive = Adaptive(initial=64, cooldown=2.0, clock=clock)
    burst(adaptive, 20)
    assert adaptive.limit == 32
    clock.advance(1.0)
    burst(adaptive, 20)
    assert adaptive.limit == 32
    clock.advance(1.0)
    burst(adaptive, 7)
    assert adaptive.limit == 16


def test_steady_throttling_reaches_the_floor_and_stays(clock: FakeClock) -> None:
    adaptive = Adaptive(cooldown=1.0, clock=clock)
    for _ in range(20):
        burst(adaptive, 20)
        clock.advance(1.0)
    assert adaptive.limit == 1
    adaptive = Adaptive(minimum=3, cooldown=1.0, clock=clock)
    for _ in range(20):
        burst(adaptive, 20)
        clock.advance(1.0)
    assert adaptive.limit == 3


def test_occasional_throttling_neither_cuts_nor_slows_growth(clock: FakeClock) -> None:
    adaptive = Adaptive(cooldown=1.0, clock=clock)
    limits = []
    for _ in range(5):
        burst(adaptive, 2)  # one call in nine throttled or fewer: below the 20% that cuts
        window(adaptive, 0.1, clock)
        limits.append(adaptive.limit)
        clock.advance(1.0)
    assert limits == [32, 64, 128, 256, 256]  # x2 a window up to the maximum


def test_one_call_in_eight_throttled_never_cuts(clock: FakeClock) -> None:
    # one call in eight answered 429 (a provider shedding load at random), also while the
    # calls of an old limit are not counted for latency
    adaptive = Adaptive(clock=clock)
    limits = []
    for _ in range(40):
        in_flight = adaptive.limit
        clock.advance(0.02)
        for i in range(in_flight):
            if i % 8 == 7:
                adaptive.on_throttle()
            else:
                adaptive.on_success(0.02)
        limits.append(adaptive.limit)
    assert limits == sorted(limits)  # never cut
    assert limits[-1] == 256


def test_throttling_that_climbs_with_the_limit_cuts_it(clock: FakeClock) -> None:
    adaptive = Adaptive(cooldown=1.0, clock=clock)
    for _ in range(20):  # a rate limit: throttles beyond about 40 calls in flight
        burst(adaptive, max(0, adaptive.limit - 40))
        window(adaptive, 0.1, clock)
        clock.advance(1.0)
        assert adaptive.limit <= 80
    assert 20 <= adaptive.limit <= 80


def test_no_growth_during_the_cooldown_then_slower_growth(clock: FakeClock) -> None:
    adaptive = Adaptive(initial=32, cooldown=2.0, clock=clock)
    burst(adaptive, 7)
    assert adaptive.limit == 16
    for _ in range(5):
        window(adaptive, 0.1)
    assert adaptive.limit == 16  # successes inside the cooldown do not count
    clock.advance(2.0)
    window(adaptive, 0.1, clock)
    assert adaptive.limit == 20  # x1.25 after a throttle


def test_an_error_discards_the_window_without_cutting(clock: FakeClock) -> None:
    adaptive = Adaptive(clock=clock)
    for _ in range(15):
        adaptive.on_success(0.1)
    adaptive.on_error()
    assert adaptive.limit == 16
    adaptive.on_success(0.1)
    assert adaptive.limit == 16
    window(adaptive, 0.1, clock)
    assert adaptive.limit == 32


def storm(adaptive: Adaptive, clock: FakeClock, seconds: float) -> None:
    """Every call throttled for ``seconds``."""
    for _ in range(int(seconds * 10)):
        burst(adaptive, adaptive.limit)
        clock.advance(0.1)


def test_recovery_after_a_throttle_storm(clock: FakeClock) -> None:
    adaptive = Adaptive(clock=clock)
    simulate(adaptive, clock, lambda _: 0.02, rounds=10)
    assert adaptive.limit == 256
    storm(adaptive, clock, seconds=10.0)
    assert adaptive.limit <= 16  # cut once per cooldown, five times
    clock.advance(adaptive.cooldown)
    limits = simulate(adaptive, clock, lambda _: 0.02, rounds=40)
    assert limits[-1] == 256  # a quarter more a window, back to the maximum
    assert limits == sorted(limits)


def test_recovery_after_a_storm_returns_to_the_knee(clock: FakeClock) -> None:
    adaptive = Adaptive(clock=clock)
    server = capacity_server(0.1, capacity=32)
    simulate(adaptive, clock, server, rounds=20)
    storm(adaptive, clock, seconds=6.0)
    assert adaptive.limit < 32
    clock.advance(adaptive.cooldown)
    limits = simulate(adaptive, clock, server, rounds=30)
    assert all(limit <= 48 for limit in limits)  # no start-up doubling after a throttle
    assert 32 <= limits[-1] <= 48


def test_history_records_each_change_with_its_time(clock: FakeClock) -> None:
    adaptive = Adaptive(clock=clock)
    clock.advance(1.5)
    window(adaptive, 0.1, clock)
    clock.advance(0.25)
    burst(adaptive, 7)
    adaptive.on_throttle()  # no change: not recorded
    assert adaptive.history() == [(0.0, 16), (2.6, 32), (2.85, 16)]


def test_history_is_bounded(clock: FakeClock) -> None:
    adaptive = Adaptive(initial=2, maximum=4, cooldown=0.0, clock=clock)
    for _ in range(3000):
        window(adaptive, 0.1, clock)
        burst(adaptive, 9)
        clock.advance(0.01)
    history = adaptive.history()
    assert len(history) <= 1000
    assert history[0] == (0.0, 2)


@pytest.mark.parametrize(
    "bad",
    [{"growth": 1.0}, {"slow_growth": 0.5}, {"cut": 1.0}, {"cut": 0.0}, {"latency_tolerance": 0.5}],
)
def test_adaptive_rejects_nonsense_factors(bad: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        Adaptive(**bad)  # type: ignore[arg-type]


# -- resolve_strategy ---------------------------------------------------------------------------


def test_async_evaluations_default_to_adaptive_up_to_the_maximum() -> None:
    strategy = resolve_strategy(None, is_async=True, max_concurrency=64)
    assert isinstance(strategy, Adaptive)
    assert strategy.maximum == 64
    assert strategy.limit == 16
    default = resolve_strategy(None, is_async=True)
    assert isinstance(default, Adaptive)
    assert default.maximum == DEFAULT_MAX_CONCURRENCY == 256


def test_sync_evaluations_default_to_sequential() -> None:
    assert isinstance(resolve_strategy(None, is_async=False), Sequential)


@pytest.mark.parametrize(("value", "limit"), [(8, 8), ("8", 8), (" 12 ", 12), (1000, 256)])
def test_numbers_give_a_fixed_limit_capped_at_the_maximum(value: int | str, limit: int) -> None:
    strategy = resolve_strategy(value, is_async=True)
    assert isinstance(strategy, Fixed)
    assert strategy.limit == limit


@pytest.mark.parametrize("name", ["adaptive", "Adaptive", "auto"])
def test_adaptive_by_name(name: str) -> None:
    assert isinstance(resolve_strategy(name, is_async=False), Adaptive)


def test_sequential_by_name() -> None:
    assert isinstance(resolve_strategy("sequential", is_async=True), Sequential)


def test_a_strategy_is_used_as_is() -> None:
    strategy = Fixed(3)
    assert resolve_strategy(strategy, is_async=True) is strategy


def test_an_adaptive_above_the_ceiling_is_copied_never_changed(clock: FakeClock) -> None:
    shared = Adaptive(initial=64, maximum=500, clock=clock)
    first = resolve_strategy(shared, is_async=True, max_concurrency=8)
    second = resolve_strategy(shared, is_async=True, max_concurrency=32)
    assert isinstance(first, Adaptive) and isinstance(second, Adaptive)
    assert (first.maximum, first.limit, first.history()) == (8, 8, [(0.0, 8)])
    assert (second.maximum, second.limit, second.history()) == (32, 32, [(0.0, 32)])
    assert (shared.maximum, shared.limit, shared.history()) == (500, 64, [(0.0, 64)])
    clock.advance(10)
    first.on_throttle()  # the copies share the fake clock and nothing else
    for _ in range(8):
        first.on_throttle()
    assert first.limit == 4
    assert (second.limit, shared.limit, shared.history()) == (32, 64, [(0.0, 64)])
    assert resolve_strategy(shared, is_async=True, max_concurrency=500) is shared


@pytest.mark.parametrize("value", ["fast", "", True, 2.5, 0, "0", -1])
def test_unknown_values_are_configuration_errors(value: object) -> None:
    with pytest.raises(ConfigurationError):
        resolve_strategy(value, is_async=True)  # type: ignore[arg-type]


def test_a_cut_is_logged(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    adaptive = Adaptive(clock=clock)
    with caplog.at_level(logging.INFO, logger="dotevals.concurrency"):
        burst(adaptive, 7)
    assert "throttled, limit cut from 16 to 8" in caplog.text


# -- Slots --------------------------------------------------------------------------------------


class Settable(Fixed):
    """A fixed limit the test changes."""

    def set(self, n: int) -> None:
        self._n = n


async def test_slots_follow_the_strategy_limit() -> None:
    strategy = Settable(2)
    slots = Slots(strategy)
    await slots.acquire()
    await slots.acquire()
    waiter = asyncio.ensure_future(slots.acquire())
    await asyncio.sleep(0)
    assert not waiter.done()
    strategy.set(1)
    slots.release()  # 1 held, limit 1: the waiter still waits
    await asyncio.sleep(0)
    assert not waiter.done() and slots.used == 1
    strategy.set(3)
    slots.release()
    await waiter
    assert slots.used == 1


async def test_a_lent_slot_is_free_during_the_block() -> None:
    slots = Slots(Fixed(1))
    await slots.acquire()
    async with slots.lent():
        assert slots.used == 0
        await slots.acquire()  # another caller may take it meanwhile
        slots.release()
    assert slots.used == 1


async def test_a_cancelled_wait_after_lending_still_counts_the_slot() -> None:
    slots = Slots(Fixed(1))
    await slots.acquire()

    async def sleeper() -> None:
        async with slots.lent():
            await slots.acquire()  # someone else holds the only slot when the block ends
            other_holds.set()
            await asyncio.sleep(0)

    other_holds = asyncio.Event()
    task = asyncio.ensure_future(sleeper())
    await other_holds.wait()
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert slots.used == 2  # the other's slot and the one the cancelled caller releases
    slots.release()
    slots.release()
    assert slots.used == 0
