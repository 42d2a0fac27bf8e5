"""``python -m dotevals.cli``: the same as the ``dotevals`` command."""

from __future__ import annotations

from dotevals.cli._main import main

if __name__ == "__main__":
    main(prog_name="dotevals")
