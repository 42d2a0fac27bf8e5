"""Supply pytest-asyncio's settings that dotevals needs when the user set none.

Evaluations use plain ``@pytest.fixture async def`` fixtures (as the model-providers page shows),
which pytest-asyncio handles in ``auto`` mode only, and session-scoped providers must meet
per-test fixtures on one event loop: both loop scopes default to ``session`` here.

pytest has no public API for one plugin to set another plugin's ini defaults, so this module
writes the values into ``Config``'s ini cache before pytest-asyncio reads them. It is the one
place that touches pytest internals; ``tests/plugin/test_asyncio_defaults.py`` checks it
against the pytest and pytest-asyncio versions we support. A value the user gave (ini file,
pyproject.toml, ``-o``, or ``--asyncio-mode``) is never replaced.
"""

from __future__ import annotations

from typing import Any, Final

import pytest

__all__ = ["apply_defaults"]

ASYNCIO_DEFAULTS: Final = {
    "asyncio_mode": "auto",
    "asyncio_default_fixture_loop_scope": "session",
    "asyncio_default_test_loop_scope": "session",
}
#: Extra collection patterns, appended to whatever the user configured.
COLLECT_PATTERNS: Final = {"python_files": "eval_*.py", "python_functions": "eval_*"}


def _user_ini(config: pytest.Config) -> Any:
    raw = getattr(config, "_inicfg", None)
    return raw if raw is not None else config.inicfg


def _set(config: pytest.Config, name: str, value: Any) -> None:
    config._inicache[name] = value


def apply_defaults(config: pytest.Config) -> None:
    """Fill in the asyncio defaults and add the ``eval_*`` collection patterns."""
    user = _user_ini(config)
    has_asyncio = config.pluginmanager.has_plugin("asyncio")
    for name, value in ASYNCIO_DEFAULTS.items():
        if not has_asyncio or name in user:
            continue
        if name == "asyncio_mode" and config.getoption("asyncio_mode", None) is not None:
            continue
        _set(config, name, value)
    for name, pattern in COLLECT_PATTERNS.items():
        current = list(config.getini(name))
        if pattern not in current:
            _set(config, name, [*current, pattern])
