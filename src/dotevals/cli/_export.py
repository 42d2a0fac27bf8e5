"""``dotevals export``: an experiment's final records as one flat CSV, JSONL or parquet file."""

from __future__ import annotations

from pathlib import Path

import click

from dotevals import export
from dotevals.cli._common import (
    prices_option,
    require_selection,
    storage_option,
)
from dotevals.pricing import Prices
from dotevals.storage import Storage

__all__ = ["export_command"]


@click.command("export")
@click.argument("experiment")
@click.option("--evaluation", default=None, metavar="NAME", help="Export only this evaluation.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(export.FORMATS),
    default=None,
    help="The file format (default: from the output's suffix).",
)
@click.option(
    "-o", "--output", type=click.Path(path_type=Path), required=True, help="The file to write."
)
@click.option("--force", is_flag=True, help="Replace the output file when it exists.")
@prices_option
@storage_option
def export_command(
    experiment: str,
    evaluation: str | None,
    fmt: export.Format | None,
    output: Path,
    force: bool,
    prices: Prices | None,
    store: Storage,
) -> None:
    """Write one row per final record: item, model, dataset columns, response, scores, tokens."""
    require_selection(store, experiment, evaluation)
    chosen = fmt or _format_of(output)
    table = export.scan(store, experiment, evaluation, prices)
    try:
        count = export.write(table, output, chosen, force=force)
    except ImportError as exc:  # the export extra is missing: the message names it
        raise click.ClickException(str(exc)) from exc
    click.echo(f"wrote {count} rows to {output}")


def _format_of(path: Path) -> export.Format:
    suffix = path.suffix.lstrip(".").lower()
    for fmt in export.FORMATS:
        if suffix == fmt:
            return fmt
    raise click.UsageError(
        f"cannot tell the format of {str(path)!r}: give --format {'|'.join(export.FORMATS)}"
    )
