"""dotevals: evaluate LLMs with plain pytest functions, resumable and fast."""

from __future__ import annotations

from dotevals._meta import version as _version
from dotevals.api import Results, run, run_async
from dotevals.decorators import Batch, ForEach, batch, foreach
from dotevals.results import Record, Result, Score

__all__ = [
    "Batch",
    "ForEach",
    "Record",
    "Result",
    "Results",
    "Score",
    "__version__",
    "batch",
    "foreach",
    "run",
    "run_async",
]

__version__: str = _version()
