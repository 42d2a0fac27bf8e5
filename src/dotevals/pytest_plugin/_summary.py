"""The table of evaluations printed at the end of a pytest session.

Every name in it (evaluations, scores, experiments) is user text and is shown literally:
``eval_param[small]`` must not be read as rich markup.
"""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table
from rich.text import Text

from dotevals.cli._hints import show_hint
from dotevals.results import Summary, format_metric

__all__ = ["render_summary"]


def _label(score: str, metric: str) -> str:
    """``score.metric``, or just ``metric`` when the score is named like it."""
    return metric if metric == score else f"{score}.{metric}"


def _metrics_text(report: Summary) -> Text:
    parts = [
        f"{_label(score, name)} {format_metric(value)}"
        for score, metrics in report.metrics.items()
        for name, value in metrics.items()
    ]
    return Text("\n".join(parts) or "-")


def _rows(report: Summary) -> str:
    size = report.dataset_size
    return f"{report.total}/{size}" if size is not None else str(report.total)


def _tokens(report: Summary) -> str:
    """``1,234 tokens`` and the cost when the run priced them; ``-`` without usage."""
    if report.usage is None:
        return "-"
    text = f"{report.usage.total_tokens:,}"
    return text if report.cost is None else f"{text}\n${report.cost:.4f}"


def _results_line(experiment: str, url: str) -> Text:
    """``results: experiment NAME in URL (see: dotevals show NAME)``, the name shell-quoted."""
    line = Text("results: experiment ")
    line.append(experiment, style="bold")
    line.append(f" in {url} (see: {show_hint(experiment)})")
    return line


def render_summary(reports: list[Summary], width: int, color: bool) -> str:
    """A rich table of the session's evaluations, as text for the terminal reporter."""
    table = Table(title="dotevals", title_justify="left")
    with_usage = any(r.usage is not None for r in reports)
    columns = ["evaluation", "rows", "errors", "metrics", "time"]
    for column in columns + (["tokens"] if with_usage else []):
        table.add_column(column, overflow="fold")
    for report in reports:
        cells: list[Text | str] = [
            Text(report.evaluation),
            _rows(report),
            str(report.errors),
            _metrics_text(report),
            f"{report.duration:.2f}s",
        ]
        table.add_row(*cells, *([_tokens(report)] if with_usage else []))
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
        console.print(_results_line(experiment, url))
    return buffer.getvalue()
