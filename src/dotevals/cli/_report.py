"""``dotevals report``: one self-contained HTML file of stored experiments, models side by side."""

from __future__ import annotations

from pathlib import Path

import click

from dotevals.cli._common import prices_option, require_experiment, storage_option
from dotevals.pricing import Prices
from dotevals.report import write_report
from dotevals.storage import Storage

__all__ = ["report_command"]


@click.command("report")
@click.argument("experiments", nargs=-1, required=True, metavar="EXPERIMENT [EXPERIMENT ...]")
@click.option("--evaluation", default=None, metavar="NAME", help="Report only this evaluation.")
@click.option(
    "-o",
    "--output",
    default="report.html",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The HTML file to write.",
)
@prices_option
@storage_option
def report_command(
    experiments: tuple[str, ...],
    evaluation: str | None,
    output: Path,
    prices: Prices | None,
    store: Storage,
) -> None:
    """Write an HTML report: metrics with intervals, plots, run facts and every row.

    Several experiments, or one run with several ``--model`` values, are shown side by side,
    rows aligned by item. The file needs no network: open it from disk or a CI artifact.
    """
    for experiment in experiments:
        require_experiment(store, experiment)
    path = write_report(store, experiments, output, evaluation, prices)
    click.echo(f"Report written to {path}")
