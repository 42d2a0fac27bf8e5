"""The ``dotevals`` click group: list, show and manage stored experiments; run the demo.

Every subcommand but ``demo`` reads the store named by its ``--storage`` option and never runs
the engine; ``demo`` runs the bundled evaluation through pytest.
A command defined in another module joins the group with one ``main.add_command(...)`` line.
"""

from __future__ import annotations

from typing import Any

import click

from dotevals import __version__
from dotevals.cli._compare import compare_command
from dotevals.cli._datasets import datasets_command
from dotevals.cli._demo import demo_command
from dotevals.cli._export import export_command
from dotevals.cli._manage import cleanup_command, delete_command, rename_command
from dotevals.cli._power import power_command
from dotevals.cli._report import report_command
from dotevals.cli._show import list_command, show_command
from dotevals.errors import DotevalsError

__all__ = ["main"]


class _Group(click.Group):
    """A group whose commands end with a one-line message, not a traceback, on store errors."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (DotevalsError, OSError) as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=_Group)
@click.version_option(__version__, "--version", prog_name="dotevals")
def main() -> None:
    """Inspect and manage dotevals results."""


main.add_command(list_command)
main.add_command(show_command)
main.add_command(delete_command)
main.add_command(rename_command)
main.add_command(cleanup_command)
main.add_command(demo_command)
main.add_command(compare_command)
main.add_command(power_command)
main.add_command(export_command)
main.add_command(report_command)
main.add_command(datasets_command)
