"""What the ``dotevals`` subcommands share: the ``--storage`` option, lookups and output."""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final, TypeVar

import click
from rich.console import Console
from rich.text import Text

from dotevals.errors import DotevalsError
from dotevals.pricing import Prices, load_prices
from dotevals.storage import DEFAULT_STORAGE, Storage, StoredEvaluation, open_storage

__all__ = [
    "console",
    "format_time",
    "load_evaluation",
    "missing_message",
    "prices_option",
    "require_evaluation",
    "require_experiment",
    "require_selection",
    "storage_option",
    "text_cells",
]

_F = TypeVar("_F", bound=Callable[..., Any])
#: How many available names a "not found" message lists.
_MAX_LISTED: Final = 20


def storage_option(func: _F) -> _F:
    """Add ``--storage URL`` to a command; the command receives the opened ``store``."""
    option = click.option(
        "--storage",
        "store",
        default=DEFAULT_STORAGE,
        show_default=True,
        metavar="URL",
        callback=_open_store,
        help="Where results are stored: json://FOLDER or sqlite://FILE.",
    )
    return option(func)


def prices_option(func: _F) -> _F:
    """Add ``--prices FILE`` (a TOML price table); the command receives ``prices``."""
    option = click.option(
        "--prices",
        "prices",
        default=None,
        metavar="FILE",
        callback=_load_prices,
        help="A TOML price table (USD per million tokens) to show cost.",
    )
    return option(func)


def _load_prices(ctx: click.Context, param: click.Parameter, path: str | None) -> Prices | None:
    if path is None:
        return None
    try:
        return load_prices(path)
    except DotevalsError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from exc


def _open_store(ctx: click.Context, param: click.Parameter, url: str) -> Storage:
    try:
        return open_storage(url)
    except DotevalsError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from exc


def console() -> Console:
    """A console on the current standard output (made per call: tests swap stdout)."""
    return Console(highlight=False)


def text_cells(*values: object) -> list[Text]:
    """Table cells shown literally: stored text may contain ``[...]`` that is not markup."""
    return [Text(str(value)) for value in values]


def format_time(timestamp: float) -> str:
    """A local date and time, or ``-`` when unknown."""
    if timestamp <= 0:
        return "-"
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def missing_message(kind: str, name: str, names: list[str], where: str) -> str:
    """Say that ``name`` is not among ``names``, suggesting close ones and listing the rest."""
    message = f"no {kind} {name!r} in {where}"
    if not names:
        return f"{message}: there are no {kind}s there"
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    close += [n for n in names if name.lower() in n.lower() and n not in close][:3]
    if close:
        message += "; did you mean " + " or ".join(repr(n) for n in close) + "?"
    listed = ", ".join(names[:_MAX_LISTED])
    more = len(names) - _MAX_LISTED
    return f"{message}\navailable {kind}s: {listed}" + (f" (and {more} more)" if more > 0 else "")


def require_experiment(store: Storage, experiment: str) -> None:
    """Raise a clean CLI error naming the experiment when the store does not hold it.

    Raises:
        click.ClickException: the experiment is missing; close and available names are listed.
    """
    if not store.has_experiment(experiment):
        names = store.list_experiments()
        raise click.ClickException(missing_message("experiment", experiment, names, store.url))


def require_evaluation(store: Storage, experiment: str, evaluation: str) -> None:
    """Raise a clean CLI error when ``experiment`` has no such evaluation.

    Raises:
        click.ClickException: the evaluation is missing; the experiment's ones are listed.
    """
    names = store.list_evaluations(experiment)
    if evaluation not in names:
        where = f"experiment {experiment!r}"
        raise click.ClickException(missing_message("evaluation", evaluation, names, where))


def require_selection(store: Storage, experiment: str, evaluation: str | None) -> None:
    """:func:`require_experiment`, then :func:`require_evaluation` when one is named."""
    require_experiment(store, experiment)
    if evaluation is not None:
        require_evaluation(store, experiment, evaluation)


def load_evaluation(store: Storage, experiment: str, evaluation: str) -> StoredEvaluation:
    """Load an evaluation, showing unreadable-line warnings on stderr as one line each."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stored = store.load(experiment, evaluation)
    for warning in caught:
        click.echo(f"warning: {warning.message}", err=True)
    return stored
