"""Importing an optional dependency, or saying which dotevals extra installs it."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["import_extra"]


def import_extra(module: str, message: str) -> Any:
    """The module ``module``; when it cannot be imported, an ImportError saying ``message``.

    ``message`` names what needs the module and the extra to install
    (``pip install 'dotevals[openai]'``); the import's own error is chained.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(message) from exc
