"""The progress bar: rich, redrawn at most ten times a second by the engine."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from rich.console import Console
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

    def start(self, name: str, total: int | None, done: int) -> None:
        """Show a bar for one evaluation."""
        with self._suspend():
            if not self.console.is_terminal:
                return
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
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
            f"{m} {format_metric(v)}" for ms in metrics.results().values() for m, v in ms.items()
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
