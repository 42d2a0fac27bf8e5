"""``dotevals compare EXP_A EXP_B``: B minus A on the same items, with a paired test."""

from __future__ import annotations

import json

import click

from dotevals.cli._common import require_experiment, storage_option
from dotevals.comparison import compare, format_comparison
from dotevals.storage import Storage

__all__ = ["compare_command"]


@click.command("compare")
@click.argument("experiment_a")
@click.argument("experiment_b")
@click.option("--evaluation", metavar="NAME", help="Compare only this evaluation.")
@click.option(
    "--level", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.95,
    show_default=True, help="Confidence level of the intervals.",
)  # fmt: skip
@click.option("--cluster", metavar="COLUMN", help="Dataset column whose values form clusters.")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@storage_option
def compare_command(
    experiment_a: str,
    experiment_b: str,
    evaluation: str | None,
    level: float,
    cluster: str | None,
    as_json: bool,
    store: Storage,
) -> None:
    """Compare EXPERIMENT_B with EXPERIMENT_A item by item (B minus A).

    Evaluations pair up by name (or by name before ``[``, so ``eval_x[local:a]`` meets
    ``eval_x[local:b]``; one experiment's two variants compare with each other).
    """
    for name in (experiment_a, experiment_b):
        require_experiment(store, name)
    result = compare(experiment_a, experiment_b, evaluation, store, level, cluster)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        click.echo(format_comparison(result))
