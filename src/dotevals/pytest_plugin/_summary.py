"""The table of evaluations printed at the end of a pytest session."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table

from dotevals._engine import EvaluationReport
from dotevals.results import format_metric

__all__ = ["render_summary"]


def _metrics_text(report: EvaluationReport) -> str:
    parts = [
        f"{score}.{name} {format_metric(value)}" if name != score else f"{name} {value}"
        for score, metrics in report.metrics.items()
        for name, value in metrics.items()
    ]
    return "\n".join(parts) or "-"


def _rows(report: EvaluationReport) -> str:
    size = report.dataset_size
    return f"{report.total}/{size}" if size is not None else str(report.total)


def render_summary(reports: list[EvaluationReport], width: int, color: bool) -> str:
    """A rich table of the session's evaluations, as text for the terminal reporter."""
    table = Table(title="dotevals", title_justify="left")
    for column in ("evaluation", "rows", "errors", "metrics (95% CI)", "time"):
        table.add_column(column, overflow="fold")
    for report in reports:
        table.add_row(
            report.evaluation,
            _rows(report),
            str(report.errors),
            _metrics_text(report),
            f"{report.duration:.2f}s",
        )
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=width,
        force_terminal=color,
        color_system="standard" if color else None,
        highlight=False,
    )
    console.print(table)
    experiments = sorted({(r.experiment, r.storage_url) for r in reports})
    for experiment, url in experiments:
        console.print(
            f"results: experiment [bold]{experiment}[/] in {url} (see: dotevals show {experiment})"
        )
    return buffer.getvalue()
