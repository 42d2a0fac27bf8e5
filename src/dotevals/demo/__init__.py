"""A small evaluation bundled with dotevals, run by ``dotevals demo`` against a local model."""

from __future__ import annotations

from pathlib import Path

__all__ = ["DEMO_DIR"]

#: The folder holding the demo's evaluation file.
DEMO_DIR = Path(__file__).parent
