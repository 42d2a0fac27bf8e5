"""``dotevals power --diff 0.03``: how many items a comparison needs."""

from __future__ import annotations

import json
from dataclasses import asdict

import click

from dotevals.stats import SampleSizes, items_needed

__all__ = ["power_command"]

_OPEN = click.FloatRange(0, 1, min_open=True, max_open=True)


@click.command("power")
@click.option("--diff", type=float, required=True, help="The difference to detect (B - A).")
@click.option("--baseline", type=_OPEN, help="Accuracy of A (0/1 scores; 0.5 if no --sd).")
@click.option("--sd", type=click.FloatRange(0, min_open=True), help="SD of a numeric score.")
@click.option(
    "--correlation", type=click.FloatRange(-1, 1), default=0.5, show_default=True,
    help="Per-item correlation of A's and B's scores (paired designs).",
)  # fmt: skip
@click.option("--power", "power_", type=_OPEN, default=0.8, show_default=True)
@click.option("--alpha", type=_OPEN, default=0.05, show_default=True, help="Two-sided.")
@click.option(
    "--cluster-size", type=click.IntRange(1), default=1, show_default=True,
    help="Items per cluster (e.g. questions per passage).",
)  # fmt: skip
@click.option("--icc", type=click.FloatRange(0, 1), default=0.0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the sizes as JSON.")
def power_command(
    diff: float,
    baseline: float | None,
    sd: float | None,
    correlation: float,
    power_: float,
    alpha: float,
    cluster_size: int,
    icc: float,
    as_json: bool,
) -> None:
    """Items needed to detect a difference of DIFF, paired and unpaired."""
    if baseline is not None and sd is not None:
        raise click.UsageError("give --baseline (0/1 scores) or --sd (numeric scores), not both")
    try:
        sizes = items_needed(diff, baseline, sd, correlation, power_, alpha, cluster_size, icc)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(asdict(sizes)))
        return
    what = f"sd {sd:g}" if sd is not None else f"accuracy {0.5 if baseline is None else baseline:g}"
    click.echo(
        f"to detect a difference of {diff:g} from {what} "
        f"(two-sided alpha {alpha:g}, power {power_:.0%}):"
    )
    click.echo(_lines(sizes, correlation, cluster_size))


def _lines(sizes: SampleSizes, correlation: float, cluster_size: int) -> str:
    clusters = f" clusters of {cluster_size}" if cluster_size > 1 else ""
    paired = f"{sizes.paired} items"
    unpaired = f"{sizes.unpaired} items per model"
    if sizes.clusters_paired is not None and sizes.clusters_unpaired is not None:
        paired += f" ({sizes.clusters_paired}{clusters})"
        unpaired += f" ({sizes.clusters_unpaired}{clusters} per model)"
    return (
        f"  paired (both models on the same items, correlation {correlation:g}): {paired}\n"
        f"  unpaired (separate items per model): {unpaired}"
    )
