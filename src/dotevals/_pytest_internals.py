"""Every use of pytest's and pytest-asyncio's non-public API by dotevals, in one place.

Used by the pytest plugin and by the provider fixtures (``providers/_pytest.py``), which must
not import the plugin.

Checked against the lowest and newest versions we support by ``tests/test_pytest_internals.py``
(and, through them, by every plugin test):

* :func:`taken_option_names`: the option strings already registered (``Parser`` keeps its
  groups private), so our short aliases never clash with a conftest's or a plugin's options.
* :func:`collect_functions`: pytest's own function collection (``PyCollector._genfunctions``),
  so an evaluation named anything is collected with parametrization, ``pytest_generate_tests``
  and pytest-asyncio's item conversion exactly as a ``test_*`` function would be.
* :func:`is_fixture_definition`: what ``@pytest.fixture`` makes of a function (pytest >= 8.4
  wraps it in ``FixtureFunctionDefinition``), to tell a fixture entry point from a class.
* :func:`closest_fixture_func`: the function of the fixture an item would get for a name
  (``Metafunc._arg2fixturedefs``).
* :func:`terminal_width`: the terminal reporter's width (``TerminalReporter._tw``).
* :func:`requesting_item`: the item on whose behalf a fixture is set up, also for session
  fixtures (``SubRequest._pyfuncitem``).
* :func:`no_strict_mode_fixture_warning`: silences pytest-asyncio's strict-mode warning about
  plain async fixtures for an evaluation, whose plain async fixtures dotevals handles.
* :func:`matches_python_files`: pytest's own matching of ``python_files`` patterns.
* :func:`handle_async_fixture`: makes pytest-asyncio run a plain ``@pytest.fixture async def``
  fixture on the session loop, through its public ``pytest_asyncio.fixture`` marking.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import types
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from _pytest.fixtures import FixtureFunctionDefinition
from _pytest.pathlib import fnmatch_ex

__all__ = [
    "closest_fixture_func",
    "collect_functions",
    "handle_async_fixture",
    "is_fixture_definition",
    "is_plain_async",
    "matches_python_files",
    "no_strict_mode_fixture_warning",
    "plain_async_on_loop",
    "requesting_item",
    "taken_option_names",
    "terminal_width",
]


def taken_option_names(parser: pytest.Parser) -> set[str]:
    """Every option string (``--model``, ``-m``) some plugin or conftest has registered."""
    groups = [parser._anonymous, *parser._groups]
    return {name for group in groups for option in group.options for name in option.names()}


def collect_functions(collector: pytest.Class | pytest.Module, name: str, obj: Any) -> list[Any]:
    """The items pytest makes of a function, as it does for ``test_*`` functions."""
    return list(collector._genfunctions(name, obj))


def requesting_item(request: pytest.FixtureRequest) -> pytest.Item | None:
    """The test item whose setup asked for this fixture (for fixtures of any scope)."""
    item = getattr(request, "_pyfuncitem", None)
    return item if isinstance(item, pytest.Item) else None


def is_plain_async(func: Any) -> bool:
    """An ``async def`` fixture function pytest-asyncio was not told to run."""
    is_async = inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func)
    return is_async and not getattr(func, "_force_asyncio_fixture", False)


def handle_async_fixture(func: Callable[..., Any], loop_scope: str) -> Callable[..., Any]:
    """A copy of ``func`` that pytest-asyncio runs on the ``loop_scope`` loop.

    ``pytest_asyncio.fixture`` marks the function it is given; marking a copy leaves the
    user's function (and so every other test that uses the fixture) as it was.
    """
    if not isinstance(func, types.FunctionType):
        return func
    copy = types.FunctionType(
        func.__code__, func.__globals__, func.__name__, func.__defaults__, func.__closure__
    )
    copy.__kwdefaults__ = func.__kwdefaults__
    functools.update_wrapper(copy, func)
    del copy.__wrapped__  # type: ignore[attr-defined]
    pytest_asyncio.fixture(copy, loop_scope=loop_scope)  # type: ignore[call-overload]
    return copy


@contextlib.contextmanager
def plain_async_on_loop(fixturedef: pytest.FixtureDef[Any], loop_scope: str) -> Iterator[None]:
    """While set up, a plain async fixture is one pytest-asyncio runs on ``loop_scope``.

    pytest-asyncio reads ``fixturedef.func`` in its own ``pytest_fixture_setup`` wrapper,
    inside this one; the user's function is put back afterwards.
    """
    original = fixturedef.func
    if not is_plain_async(original):
        yield
        return
    fixturedef.func = handle_async_fixture(original, loop_scope)  # type: ignore[misc]
    try:
        yield
    finally:
        fixturedef.func = original  # type: ignore[misc]


def matches_python_files(config: pytest.Config, path: Path) -> bool:
    """Whether pytest itself collects ``path`` as a test module (its ``python_files``)."""
    return any(fnmatch_ex(pattern, path) for pattern in config.getini("python_files"))


#: pytest-asyncio's warning (1.x) for a plain async fixture an asyncio test requests in strict
#: mode; it reads ``fixturedef.func`` after :func:`plain_async_on_loop` put the user's back.
_STRICT_FIXTURE_WARNING = r"asyncio test .* requested async @pytest\.fixture"


@contextlib.contextmanager
def no_strict_mode_fixture_warning() -> Iterator[None]:
    """Around an evaluation's call: its plain async fixtures were run on the session loop."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_STRICT_FIXTURE_WARNING)
        yield


def is_fixture_definition(obj: Any) -> bool:
    """Whether ``obj`` is a function decorated with ``@pytest.fixture``."""
    return isinstance(obj, FixtureFunctionDefinition)


def closest_fixture_func(metafunc: pytest.Metafunc, name: str) -> Any:
    """The function of the fixture ``name`` the item being collected would get, or None."""
    fixturedefs = getattr(metafunc, "_arg2fixturedefs", {}).get(name)
    return fixturedefs[-1].func if fixturedefs else None


def terminal_width(reporter: pytest.TerminalReporter) -> int:
    """The width of the terminal pytest writes to."""
    width: int = reporter._tw.fullwidth
    return width
