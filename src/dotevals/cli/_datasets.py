"""``dotevals datasets``: the registered datasets, with their splits and columns.

The dataset classes are imported (for their ``splits`` and ``columns``) but never built, so
nothing is downloaded.
"""

from __future__ import annotations

import json
from typing import Any

import click

from dotevals.datasets import get_dataset_info, list_available
from dotevals.errors import PluginLoadError

__all__ = ["datasets_command"]


@click.command("datasets")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per dataset.")
def datasets_command(as_json: bool) -> None:
    """List the datasets `@foreach.NAME(split)` can use: their splits and columns.

    A dataset plugin that fails to load is reported on stderr, and the command exits with 1.
    """
    names = list_available()
    if not names:
        click.echo("No datasets registered: install a plugin such as dotevals-datasets.")
        return
    broken = False
    for name in names:
        try:
            info = get_dataset_info(name)
        except PluginLoadError as exc:
            click.echo(f"{name}: failed to load: {exc}", err=True)
            broken = True
            continue
        click.echo(json.dumps({**info, "name": name}) if as_json else _line(name, info))
    if broken:
        raise SystemExit(1)


def _line(name: str, info: dict[str, Any]) -> str:
    splits = ", ".join(info["splits"]) or "-"
    columns = ", ".join(info["columns"]) or "-"
    return f"{name}  splits: {splits}  columns: {columns}"
