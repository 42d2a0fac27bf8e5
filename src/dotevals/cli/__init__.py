"""The ``dotevals`` command: list, show and manage stored experiments; run the demo.

The click group lives in :mod:`dotevals.cli._main` and is imported on first use of ``main``
(PEP 562), so that importing a light module of this package (``dotevals.cli._hints``, which
the pytest plugin uses) does not import click and every command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dotevals.cli._main import main

__all__ = ["main"]


def __getattr__(name: str) -> Any:
    if name == "main":
        from dotevals.cli._main import main

        return main
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
