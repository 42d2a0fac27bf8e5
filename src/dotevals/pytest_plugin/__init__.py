"""The dotevals pytest plugin (entry point ``pytest11``): a thin adapter over the engine.

Installed, it is loaded by every pytest session, so it is built to change nothing in a session
that collects no evaluation:

* An evaluation is a function carrying a dotevals spec (``@foreach``, ``@batch``,
  ``ForEach()(...)``), collected whatever its name, in any file pytest collects. A plain
  function named ``eval_*`` is not. Files named ``eval_*.py`` are collected too, but only when
  their source mentions ``dotevals`` (so an ``eval_utils.py`` helper is never imported by
  collection).
* Evaluations carry the ``dotevals`` marker (``-m dotevals`` / ``-m "not dotevals"``) and run
  on pytest-asyncio's session loop; the plain ``@pytest.fixture async def`` fixtures they
  request run on that loop too. Nothing else about pytest-asyncio changes: ordinary async
  tests behave as its own settings say.
* Options are ``--dotevals-*`` (and ``dotevals_*`` ini keys); the short forms of dotevals 0.26
  are added where no conftest or plugin defined them.
* The engine, rich, httpx and the providers' SDKs load when an evaluation runs.

Evaluations are ordinary pytest items run in the call phase; pytest resolves their fixtures;
``dotevals._engine.evaluate`` runs the rows. Function-scoped fixtures live for a whole
evaluation, not for each row.
"""

from __future__ import annotations

import inspect
from collections.abc import Generator
from pathlib import Path
from typing import Any, Final

import pytest

from dotevals import _pytest_internals as _internals
from dotevals._names import RUNNER_ATTR, SPEC_ATTR
from dotevals.pytest_plugin._options import Settings, add_options, add_short_aliases
from dotevals.pytest_plugin._state import STATE_KEY, SessionState, worker_experiment

__all__: list[str] = []

MARKER: Final = "dotevals"
_SKIPPED_ALIASES = pytest.StashKey[list[str]]()
_MARKER_HELP: Final = (
    f"{MARKER}: a dotevals evaluation (added to every @foreach/@batch function); "
    f'select with -m {MARKER} or -m "not {MARKER}"'
)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> Generator[None, None, None]:
    """Add the short option names once every conftest and plugin has added its own."""
    yield
    early_config.stash[_SKIPPED_ALIASES] = add_short_aliases(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", _MARKER_HELP)
    settings = Settings.from_config(config)
    state = SessionState.from_config(config, settings, worker_experiment(config))
    config.stash[STATE_KEY] = state
    setattr(config, RUNNER_ATTR, _run_item)
    if config.pluginmanager.has_plugin("xdist"):
        from dotevals.pytest_plugin._xdist import XdistHooks

        config.pluginmanager.register(XdistHooks(), "dotevals-xdist")
    if settings.report:
        from dotevals.pytest_plugin._report import ReportHooks

        config.pluginmanager.register(ReportHooks(), "dotevals-report")
    if settings.cache_path:
        from dotevals import cache

        state.cache = cache.configure(settings.cache_path)
    _configure_providers(config, state)


def _configure_providers(config: pytest.Config, state: SessionState) -> None:
    """Register the provider fixtures; local servers log under ``<store root>/logs``."""
    from dotevals.providers import _pytest as provider_fixtures
    from dotevals.storage.jsonl import LOG_DIR, JSONLStorage

    storage = state.storage
    log_dir = storage.root.resolve() / LOG_DIR if isinstance(storage, JSONLStorage) else None
    provider_fixtures.configure(config, state.settings.models, log_dir)
    if not config.pluginmanager.is_registered(provider_fixtures):
        config.pluginmanager.register(provider_fixtures, "dotevals-provider-hooks")


def pytest_collection_finish(session: pytest.Session) -> None:
    """With evaluations or provider fixtures collected, local servers log under the store."""
    from dotevals.providers import _pytest as provider_fixtures

    items = session.items
    if any(item.get_closest_marker(MARKER) for item in items) or provider_fixtures.uses_providers(
        items
    ):
        provider_fixtures.apply_session_defaults(session.config)


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE_KEY, None)
    close = getattr(state and state.runner, "close", None)
    if close is not None:  # the Ray runner's actors served the whole session
        close()
    if state is not None and state.settings.cache_path:
        from dotevals import cache

        cache.configure(None)


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Where results go, under which experiment, and short options left to others."""
    state = config.stash[STATE_KEY]
    lines = [f"dotevals: results in {state.settings.storage}, experiment {state.experiment}"]
    skipped = config.stash.get(_SKIPPED_ALIASES, [])
    if skipped:
        names = ", ".join(skipped)
        lines.append(f"dotevals: {names} defined elsewhere; use the --dotevals-* spelling for ours")
    return lines


def _spec_of(obj: Any) -> Any:
    """The spec an evaluation function carries; None for anything else (nothing is called)."""
    if not inspect.isfunction(obj):
        return None
    return obj.__dict__.get(SPEC_ATTR)


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(
    collector: pytest.Module | pytest.Class, name: str, obj: object
) -> list[Any] | None:
    """Collect every function carrying a dotevals spec, whatever its name, marked.

    ``fn.__test__ = False`` keeps one out, as pytest does for tests (an evaluation defined in a
    test module only for ``dotevals.run``).
    """
    if _spec_of(obj) is None or getattr(obj, "__test__", True) is False:
        return None
    marks = {mark.name for mark in getattr(obj, "pytestmark", [])}
    if MARKER not in marks:
        pytest.mark.dotevals(obj)
    if "asyncio" not in marks:  # the session loop, where session-scoped providers live
        pytest.mark.asyncio(loop_scope="session")(obj)
    return _internals.collect_functions(collector, name, obj)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    """``eval_*.py`` files that use dotevals, beside the files pytest collects itself."""
    if not (file_path.name.startswith("eval_") and file_path.suffix == ".py"):
        return None
    config = parent.config
    if parent.session.isinitpath(file_path):
        return None  # pytest collects a path given on the command line itself
    if _internals.matches_python_files(config, file_path):
        return None
    try:
        uses_dotevals = b"dotevals" in file_path.read_bytes()
    except OSError:
        return None
    return pytest.Module.from_parent(parent, path=file_path) if uses_dotevals else None


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> Generator[None, Any, Any]:
    """A plain ``async def`` fixture an evaluation asks for runs on the session loop."""
    item = _internals.requesting_item(request)
    if item is None or item.get_closest_marker(MARKER) is None:
        return (yield)
    with _internals.plain_async_on_loop(fixturedef, "session"):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """pytest-asyncio's strict-mode warning does not apply to an evaluation's fixtures."""
    if item.get_closest_marker(MARKER) is None:
        return (yield)
    with _internals.no_strict_mode_fixture_warning():
        return (yield)


async def _run_item(request: pytest.FixtureRequest, spec: Any, fixtures: dict[str, Any]) -> None:
    """Run an evaluation item (the engine is imported by the first one)."""
    from dotevals.pytest_plugin._item import run_item

    await run_item(request, spec, fixtures)


def pytest_sessionfinish(session: pytest.Session) -> None:
    if getattr(session.config, "workeroutput", None) is not None:
        from dotevals.pytest_plugin._xdist import send_reports

        send_reports(session.config)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    state = terminalreporter.config.stash.get(STATE_KEY, None)
    if state is None or not state.reports:
        return
    from dotevals.pytest_plugin._summary import render_summary

    text = render_summary(
        state.reports, _internals.terminal_width(terminalreporter), terminalreporter.hasmarkup
    )
    terminalreporter.write(text)
    if len(state.settings.models) > 1:
        from dotevals.pytest_plugin._item import model_comparisons

        terminalreporter.write(model_comparisons(state))
    if state.cache is not None:
        counts = state.cache.stats()
        terminalreporter.write_line(
            f"response cache {counts['path']}: {counts['hits']} hits, {counts['misses']} misses"
        )
