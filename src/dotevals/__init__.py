"""dotevals: evaluate LLMs with plain pytest functions, resumable and fast.

The public names load on first use (PEP 562): the pytest plugin imports this package in every
pytest session, and a session that collects no evaluation must not pay for the engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from dotevals.api import Results as Results
    from dotevals.api import load as load
    from dotevals.api import run as run
    from dotevals.api import run_async as run_async
    from dotevals.comparison import Comparison as Comparison
    from dotevals.comparison import compare as compare
    from dotevals.decorators import Batch as Batch
    from dotevals.decorators import ForEach as ForEach
    from dotevals.decorators import batch as batch
    from dotevals.decorators import foreach as foreach
    from dotevals.results import Header as Header
    from dotevals.results import Record as Record
    from dotevals.results import Result as Result
    from dotevals.results import Score as Score
    from dotevals.results import Summary as Summary
    from dotevals.results import Usage as Usage

    __version__: str

__all__ = [
    "Batch",
    "Comparison",
    "ForEach",
    "Header",
    "Record",
    "Result",
    "Results",
    "Score",
    "Summary",
    "Usage",
    "__version__",
    "batch",
    "compare",
    "foreach",
    "load",
    "run",
    "run_async",
]

#: Where each public name lives.
_HOMES: Final = {
    "Batch": "dotevals.decorators",
    "ForEach": "dotevals.decorators",
    "batch": "dotevals.decorators",
    "foreach": "dotevals.decorators",
    "Header": "dotevals.results",
    "Record": "dotevals.results",
    "Summary": "dotevals.results",
    "Usage": "dotevals.results",
    "Result": "dotevals.results",
    "Score": "dotevals.results",
    "Results": "dotevals.api",
    "load": "dotevals.api",
    "run": "dotevals.api",
    "run_async": "dotevals.api",
    "Comparison": "dotevals.comparison",
    "compare": "dotevals.comparison",
}


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from dotevals._meta import version

        value: Any = version()
    elif name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name]), name)
    else:
        raise AttributeError(f"module 'dotevals' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
