"""The progress bar: rich, redrawn at most ten times a second by the engine.

It is drawn on a terminal and in a Jupyter notebook (where rich reports ``is_terminal`` False
and draws through ipywidgets); elsewhere (a pipe, a CI log) nothing is drawn. Names are shown
literally, never read as rich markup.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from dotevals.metrics import RunningMetrics
from dotevals.results import format_metric

__all__ = ["RichProgress"]


class RichProgress:
    """A progress bar with the running metrics, drawn without a background thread.

    Args:
        suspend: a context manager factory that lets output reach the terminal (pytest's
            capture is suspended while drawing).
        console: where to draw (stderr by default).
    """

    def __init__(
        self,
        suspend: Callable[[], AbstractContextManager[Any]] | None = None,
        console: Console | None = None,
    ) -> None:
        self._suspend = suspend or nullcontext
        self.console = console or Console(stderr=True)
        self._progress: Progress | None = None
        self._task: Any = None

    @property
    def draws(self) -> bool:
        """Whether the console shows a bar: a terminal or a Jupyter notebook."""
        with self._suspend():
            return bool(self.console.is_terminal or self.console.is_jupyter)

    def start(self, name: str, total: int | None, done: int) -> None:
        """Show a bar for one evaluation."""
        if not self.draws:
            return
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
        """Redraw with the latest counts and metrics."""
        if self._progress is None:
            return
        parts = [
            escape(f"{m} {format_metric(v, brief=True)}")
            for ms in metrics.results(bootstrap=False).values()
            for m, v in ms.items()
        ]
        if errors:
            parts.append(f"[red]{errors} errors")
        self._progress.update(self._task, completed=done, info="  ".join(parts[:3]))
        with self._suspend():
            self._progress.refresh()

    def finish(self) -> None:
        """Leave the final bar on screen."""
        if self._progress is not None:
            with self._suspend():
                self._progress.stop()
            self._progress = None
