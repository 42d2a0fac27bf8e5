"""Progress with rows per second and time left: the bar on a terminal, plain lines in a pipe."""

from __future__ import annotations

import io

from rich.console import Console

from dotevals._progress import RichProgress, rate_and_eta
from dotevals.metrics import RunningMetrics
from dotevals.results import Score


class FakeClock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def _metrics(*values: bool) -> RunningMetrics:
    metrics = RunningMetrics()
    for value in values:
        metrics.add([Score("exact_match", value, ["accuracy"])], False)
    return metrics


def test_rate_and_eta_count_only_this_runs_rows() -> None:
    assert rate_and_eta(done=300, total=1000, ran=200, elapsed=2.0) == [
        "100 rows/s",
        "ETA 0:00:07",
    ]
    assert rate_and_eta(done=3, total=None, ran=3, elapsed=2.0) == ["1.5 rows/s"]
    assert rate_and_eta(done=10, total=10, ran=0, elapsed=2.0) == []
    assert rate_and_eta(done=1, total=100_000, ran=1, elapsed=1.0)[1] == "ETA 27:46:39"


def test_the_bar_shows_rate_eta_metric_and_errors() -> None:
    buffer, clock = io.StringIO(), FakeClock()
    console = Console(file=buffer, force_terminal=True, width=160, color_system=None)
    progress = RichProgress(console=console, clock=clock)
    progress.start("eval_x", 100, 20)  # 20 done by an earlier run
    clock.now += 4.0
    progress.update(60, 2, _metrics(True, False))
    progress.finish()
    out = buffer.getvalue()
    assert "60/100" in out
    assert "10 rows/s" in out  # 40 rows this run in 4 s
    assert "ETA 0:00:04" in out
    assert "accuracy 0.500 [" in out
    assert "2 errors" in out


def _piped(clock: FakeClock) -> tuple[RichProgress, io.StringIO]:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=False, width=80)
    return RichProgress(console=console, every=5.0, clock=clock), buffer


def test_a_pipe_gets_a_plain_line_every_few_seconds() -> None:
    clock = FakeClock()
    progress, buffer = _piped(clock)
    progress.start("eval_x", 1000, 0)
    for second in range(1, 13):
        clock.now += 1.0
        progress.update(second * 50, 1, _metrics(True))
    progress.finish()
    tail = "accuracy 1.000 [0.207, 1.000]  1 errors"
    assert buffer.getvalue().splitlines() == [
        f"eval_x: 250/1000 (25%)  50 rows/s  ETA 0:00:15  {tail}",
        f"eval_x: 500/1000 (50%)  50 rows/s  ETA 0:00:10  {tail}",
        f"eval_x: 600/1000 (60%)  50 rows/s  ETA 0:00:08  {tail}  done",
    ]
    assert "\x1b" not in buffer.getvalue()  # no cursor movement or colour in a log


def test_a_short_run_in_a_pipe_prints_nothing() -> None:
    clock = FakeClock()
    progress, buffer = _piped(clock)
    progress.start("eval_x", 3, 0)
    clock.now += 1.0
    progress.update(3, 0, RunningMetrics())
    progress.finish()
    assert buffer.getvalue() == ""


def test_names_in_plain_lines_are_literal() -> None:
    clock = FakeClock()
    progress, buffer = _piped(clock)
    progress.start("eval_p[red]x[/red]", None, 0)
    clock.now += 6.0
    progress.update(12, 0, RunningMetrics())
    assert buffer.getvalue() == "eval_p[red]x[/red]: 12  2.0 rows/s\n"
