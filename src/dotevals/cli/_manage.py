"""``dotevals delete``, ``rename`` and ``cleanup``: housekeeping of stored experiments."""

from __future__ import annotations

import time
from typing import Final

import click
from rich.table import Table

from dotevals.cli._common import console, format_time, require_experiment, storage_option
from dotevals.cli._common import text_cells as cells
from dotevals.storage import Storage

__all__ = ["UNNAMED_PREFIX", "cleanup_command", "delete_command", "rename_command"]

#: Runs started without ``--experiment`` are named ``unnamed-YYYYMMDD-HHMMSS-xxxx``.
UNNAMED_PREFIX: Final = "unnamed-"
_DAY_S: Final = 86400.0


@click.command("delete")
@click.argument("experiment")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@storage_option
def delete_command(experiment: str, yes: bool, store: Storage) -> None:
    """Delete an experiment and all its evaluations."""
    require_experiment(store, experiment)
    if not yes:
        count = len(store.list_evaluations(experiment))
        click.confirm(
            f"Delete experiment {experiment!r} ({count} evaluations) from {store.url}?",
            abort=True,
        )
    store.delete_experiment(experiment)
    click.echo(f"Deleted experiment {experiment!r}.")


@click.command("rename")
@click.argument("old")
@click.argument("new")
@storage_option
def rename_command(old: str, new: str, store: Storage) -> None:
    """Rename experiment OLD to NEW."""
    require_experiment(store, old)
    store.rename_experiment(old, new)
    click.echo(f"Renamed experiment {old!r} to {new!r}.")


@click.command("cleanup")
@click.option(
    "--older-than",
    "days",
    type=click.FloatRange(min=0),
    default=7,
    show_default=True,
    metavar="DAYS",
    help="Delete unnamed experiments last modified more than this many days ago.",
)
@click.option("--dry-run", is_flag=True, help="Only list what would be deleted.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@storage_option
def cleanup_command(days: float, dry_run: bool, yes: bool, store: Storage) -> None:
    """Delete unnamed experiments (``unnamed-...``) older than DAYS; named ones are kept."""
    stale = _stale_unnamed(store, time.time() - days * _DAY_S)
    if not stale:
        click.echo(f"No unnamed experiments older than {days:g} days in {store.url}.")
        return
    table = Table("Unnamed experiment", "Last modified")
    for name, modified in stale.items():
        table.add_row(*cells(name, format_time(modified)))
    console().print(table)
    if dry_run:
        click.echo(f"Dry run: would delete {len(stale)} experiments.")
        return
    if not yes:
        click.confirm(f"Delete these {len(stale)} experiments?", abort=True)
    for name in stale:
        store.delete_experiment(name)
    click.echo(f"Deleted {len(stale)} experiments.")


def _stale_unnamed(store: Storage, cutoff: float) -> dict[str, float]:
    """Unnamed experiments last modified before ``cutoff``, with their modification times."""
    modified = {
        name: store.experiment_mtime(name)
        for name in store.list_experiments()
        if name.startswith(UNNAMED_PREFIX)
    }
    return {name: when for name, when in modified.items() if when < cutoff}
