"""Runs the dotevals test server: ``python -m dotevals.testing --port 8000``."""

from __future__ import annotations

import sys

from dotevals.testing._server import run_server

__all__: list[str] = []

if __name__ == "__main__":
    sys.exit(run_server(sys.argv[1:]))
