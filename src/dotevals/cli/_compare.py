"""``dotevals compare EXP_A EXP_B``: B minus A on the same items, with a paired test."""

from __future__ import annotations

import json

import click

from dotevals.cli._common import require_experiment, storage_option
from dotevals.comparison import Comparison, ScoreComparison, compare
from dotevals.stats import format_interval
from dotevals.storage import Storage

__all__ = ["compare_command", "render_comparison"]


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
        click.echo(render_comparison(result))


def render_comparison(comparison: Comparison) -> str:
    """The comparison as text, one block per score."""
    head = f"A = {comparison.experiment_a}, B = {comparison.experiment_b}: differences are B - A"
    return "\n\n".join([head, *(_block(s) for s in comparison.scores)])


def _block(item: ScoreComparison) -> str:
    r = item.result
    names = item.evaluation_a
    if item.evaluation_b != item.evaluation_a:
        names = f"{item.evaluation_a} vs {item.evaluation_b}"
    left = (
        f", {item.left_out} items left out (errored or missing on a side)" if item.left_out else ""
    )
    lines = [
        f"{names} · {item.score}: {r.n} paired items{left}",
        f"  A {r.mean_a:.3f}   B {r.mean_b:.3f}",
        f"  B - A {format_interval(r.diff, 3)}",
    ]
    p = "n/a" if r.p_value is None else f"{r.p_value:.4g}"
    test = f"  {r.test} p={p}"
    if r.a_only is not None and r.b_only is not None:
        test += f"; discordant: A only {r.a_only}, B only {r.b_only}"
    corr = "n/a" if r.correlation is None else f"{r.correlation:.2f}"
    lines.append(f"{test}; per-item correlation {corr}")
    if r.detectable is not None:
        lines.append(f"  smallest difference this could detect (80% power): {r.detectable:.3f}")
    return "\n".join(lines)
