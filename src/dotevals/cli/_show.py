"""``dotevals list`` and ``dotevals show``: what a store holds, figures recomputed from it."""

from __future__ import annotations

import json
import math
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from dotevals.cli._common import (
    console,
    format_time,
    load_evaluation,
    prices_option,
    require_selection,
    storage_option,
    text_cells,
)
from dotevals.figures import (
    EvaluationFigures,
    ExperimentOverview,
    Status,
    evaluation_figures,
    evaluation_status,
    figures_to_dict,
)
from dotevals.pricing import Prices
from dotevals.results import MetricValue, Record, format_metric
from dotevals.storage import Storage

__all__ = ["list_command", "show_command"]

_STATUS_STYLE: dict[Status, str] = {
    "complete": "green",
    "has errors": "yellow",
    "incomplete": "yellow",
    "failed": "red",
}


@click.command("list")
@click.option("--name", "substring", default="", help="Only experiments whose name contains this.")
@storage_option
def list_command(substring: str, store: Storage) -> None:
    """List the stored experiments, most recently modified first.

    \b
    Status, the worst of the experiment's evaluations:
      failed      a run stopped early: many rows failed the same way, none passed
      incomplete  the last run did not finish (killed before writing its summary),
                  or fewer rows are stored than the dataset has (an interrupted run)
      has errors  the runs finished but some rows errored: run again to retry them
      complete    the runs finished and no row errored
    """
    names = [n for n in store.list_experiments() if substring in n]
    if not names:
        click.echo(f"No experiments{_matching(substring)} in {store.url}.")
        return
    overviews = sorted(
        (_overview(store, name) for name in names), key=lambda o: o.modified, reverse=True
    )
    table = Table("Experiment", "Evaluations", "Rows", "Errors", "Status", "Last modified")
    for o in overviews:
        table.add_row(
            *text_cells(o.name, o.evaluations, o.rows, o.errors),
            Text(o.status, style=_STATUS_STYLE[o.status]),
            Text(format_time(o.modified)),
        )
    console().print(table)


def _matching(substring: str) -> str:
    return f" matching {substring!r}" if substring else ""


def _overview(store: Storage, experiment: str) -> ExperimentOverview:
    evaluations = store.list_evaluations(experiment)
    stored = [load_evaluation(store, experiment, e) for e in evaluations]
    statuses = [evaluation_status(s) for s in stored]
    return ExperimentOverview(
        name=experiment,
        evaluations=len(evaluations),
        rows=sum(len(s.records) for s in stored),
        errors=sum(s.errors for s in stored),
        modified=store.experiment_mtime(experiment),
        failed=statuses.count("failed"),
        incomplete=statuses.count("incomplete"),
    )


@click.command("show")
@click.argument("experiment")
@click.option("--evaluation", default=None, metavar="NAME", help="Show only this evaluation.")
@click.option("--errors", "show_errors", is_flag=True, help="List the errored rows.")
@click.option("--full", is_flag=True, help="List every record.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead.")
@prices_option
@storage_option
def show_command(
    experiment: str,
    evaluation: str | None,
    show_errors: bool,
    full: bool,
    as_json: bool,
    prices: Prices | None,
    store: Storage,
) -> None:
    """Show an experiment's evaluations: rows, errors, and metrics with their intervals."""
    require_selection(store, experiment, evaluation)
    names = [evaluation] if evaluation is not None else store.list_evaluations(experiment)
    figures = [evaluation_figures(n, load_evaluation(store, experiment, n), prices) for n in names]
    if as_json:
        document = {
            "experiment": experiment,
            "storage": store.url,
            "evaluations": [figures_to_dict(f, show_errors, full) for f in figures],
        }
        click.echo(json.dumps(_strict(document), indent=2, default=repr, allow_nan=False))
        return
    out = console()
    out.print(Text(f"Experiment {experiment} ({store.url})", style="bold"))
    for figure in figures:
        _print_evaluation(out, figure, show_errors, full)


def _strict(value: Any) -> Any:
    """The value with NaN and infinities replaced by None: strict JSON has neither."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    return value


def _print_evaluation(
    out: Console, figures: EvaluationFigures, show_errors: bool, full: bool
) -> None:
    errors = len(figures.errored)
    out.print()
    model = figures.header.model if figures.header is not None else None
    of_model = f" (model {model})" if model else ""
    title = f"{figures.name}: {figures.rows} rows, {errors} errors{of_model}"
    out.print(Text(title, style="bold"))
    if figures.metrics:
        out.print(_metrics_table(figures))
    if figures.usage_by_model:
        out.print(_usage_table(figures))
    if figures.error_types:
        kinds = ", ".join(f"{kind}: {count}" for kind, count in figures.error_types.items())
        out.print(Text(f"Error types: {kinds}"))
    if show_errors and figures.errored:
        out.print(_errors_table(figures.errored))
    if full:
        out.print(_records_table(figures.records))


def _metrics_table(figures: EvaluationFigures) -> Table:
    table = Table(
        "Score",
        "Metric",
        "Errors as failures",
        "Errored rows excluded",
        "Source",
    )
    for m in figures.metrics:
        cells = (m.score, m.metric, _format(m.with_errors), _format(m.without_errors), m.source)
        table.add_row(*text_cells(*cells))
    return table


def _usage_table(figures: EvaluationFigures) -> Table:
    table = Table("Model", "Prompt tokens", "Completion tokens", "Total tokens", "Cost (USD)")
    for model, usage in figures.usage_by_model.items():
        cost = figures.cost_by_model.get(model)
        table.add_row(
            *text_cells(
                model or "(unknown)",
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.total_tokens,
                "-" if cost is None else f"{cost:.4f}",
            )
        )
    return table


def _format(value: MetricValue | None) -> str:
    """``0.750 [0.430, 0.930] n=12 Wilson 95%``, or ``n/a`` when there is no figure."""
    return "n/a" if value is None else format_metric(value)


def _errors_table(records: list[Record]) -> Table:
    table = Table("Item", "Error type", "Message", title="Errored rows")
    for record in records:
        if record.error is not None:
            table.add_row(*text_cells(record.item_id, record.error.type, record.error.message))
    return table


def _records_table(records: list[Record]) -> Table:
    table = Table("Item", "Row", "Response", "Scores", "Error", title="Records")
    for record in records:
        error = record.error
        table.add_row(
            *text_cells(
                record.item_id,
                _as_text(record.dataset_row),
                _as_text(record.model_response),
                ", ".join(f"{s.name}={s.value!r}" for s in record.scores),
                f"{error.type}: {error.message}" if error is not None else "",
            )
        )
    return table


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=repr)
