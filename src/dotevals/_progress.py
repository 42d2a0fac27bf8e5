"""Progress: a rich bar on a terminal, plain lines in a pipe or a CI log.

The bar is drawn on a terminal and in a Jupyter notebook (where rich reports ``is_terminal``
False and draws through ipywidgets), redrawn at most ten times a second by the engine, with
rows per second, the time left, the live metrics and the error count. Elsewhere (``| tee``, a
CI log) a plain line with the same figures is printed every few seconds, and a last one when
the evaluation ends, if it ran long enough to print any. Names are shown literally, never read
as rich markup.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from dotevals.metrics import RunningMetrics
from dotevals.results import format_metric

__all__ = ["RichProgress"]

#: Seconds between plain progress lines when no bar is drawn.
PLAIN_EVERY = 5.0


def _clock_text(seconds: float) -> str:
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def rate_and_eta(done: int, total: int | None, ran: int, elapsed: float) -> list[str]:
    """``["310 rows/s", "ETA 0:00:12"]`` for ``ran`` rows in ``elapsed`` s (empty before any)."""
    if ran <= 0 or elapsed <= 0:
        return []
    rate = ran / elapsed
    parts = [f"{rate:,.1f} rows/s" if rate < 10 else f"{rate:,.0f} rows/s"]
    if total is not None and total >= done:
        parts.append(f"ETA {_clock_text((total - done) / rate)}")
    return parts


def _metric_parts(metrics: RunningMetrics) -> list[str]:
    """``accuracy 0.750 [0.301, 0.954]``: brief figures, no bootstrap (redrawn often)."""
    return [
        f"{m} {format_metric(v, brief=True)}"
        for ms in metrics.results(bootstrap=False).values()
        for m, v in ms.items()
    ]


class RichProgress:
    """Progress of one evaluation at a time, drawn without a background thread.

    Args:
        suspend: a context manager factory that lets output reach the terminal (pytest's
            capture is suspended while drawing).
        console: where to draw (stderr by default).
        every: seconds between plain lines when no bar is drawn.
        clock: the monotonic clock (tests pass a fake one).
    """

    def __init__(
        self,
        suspend: Callable[[], AbstractContextManager[Any]] | None = None,
        console: Console | None = None,
        every: float = PLAIN_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._suspend = suspend or nullcontext
        self.console = console or Console(stderr=True)
        self.every = every
        self._clock = clock
        self._progress: Progress | None = None
        self._task: Any = None
        self._name = ""
        self._total: int | None = None
        self._first = 0
        self._started = 0.0
        self._next_line: float | None = None
        self._last = ""

    @property
    def draws(self) -> bool:
        """Whether the console shows a bar: a terminal or a Jupyter notebook."""
        with self._suspend():
            return bool(self.console.is_terminal or self.console.is_jupyter)

    def start(self, name: str, total: int | None, done: int) -> None:
        """Show a bar for one evaluation (or, with no bar, plan its plain lines)."""
        self._name, self._total, self._first = name, total, done
        self._started = self._clock()
        self._last = ""
        if not self.draws:
            self._next_line = self._started + self.every
            return
        self._next_line = None
        self._progress = Progress(
            TextColumn("{task.description}", style="bold", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=self.console,
            auto_refresh=False,
            transient=False,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._task = self._progress.add_task(name, total=total, completed=done, info="")
        with self._suspend():
            self._progress.start()

    def update(self, done: int, errors: int, metrics: RunningMetrics) -> None:
        """Redraw with the latest counts and metrics (a plain line when one is due)."""
        now = self._clock()
        figures = rate_and_eta(done, self._total, done - self._first, now - self._started)
        if self._progress is not None:
            parts = [escape(p) for p in figures + _metric_parts(metrics)[:3]]
            if errors:
                parts.append(f"[red]{errors} errors")
            self._progress.update(self._task, completed=done, info="  ".join(parts))
            with self._suspend():
                self._progress.refresh()
            return
        self._last = self._plain_line(done, errors, figures, metrics)
        if self._next_line is not None and now >= self._next_line:
            self._next_line = now + self.every
            self._print(self._last)

    def _plain_line(
        self, done: int, errors: int, figures: list[str], metrics: RunningMetrics
    ) -> str:
        count = f"{done}/{self._total}" if self._total is not None else f"{done}"
        if self._total:
            count += f" ({done / self._total:.0%})"
        parts = [f"{self._name}: {count}", *figures, *_metric_parts(metrics)[:3]]
        if errors:
            parts.append(f"{errors} errors")
        return "  ".join(parts)

    def _print(self, line: str) -> None:
        with self._suspend():
            self.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def finish(self) -> None:
        """Leave the final bar on screen (or print a last line, if any was printed)."""
        if self._progress is not None:
            with self._suspend():
                self._progress.stop()
            self._progress = None
        elif self._next_line is not None and self._next_line > self._started + self.every:
            self._print(f"{self._last}  done")
        self._next_line = None
