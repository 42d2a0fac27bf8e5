"""Hints that name a ``dotevals`` command, for messages printed outside the CLI.

Standard library only: the pytest plugin imports this in every session, without click.
"""

from __future__ import annotations

import shlex

__all__ = ["show_hint"]


def show_hint(experiment: str, *args: str) -> str:
    """``dotevals show EXPERIMENT ARGS...``, every word shell-quoted, to paste into a shell."""
    return shlex.join(["dotevals", "show", experiment, *args])
