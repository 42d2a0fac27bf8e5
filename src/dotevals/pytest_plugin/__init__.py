"""The dotevals pytest plugin (entry point ``pytest11``): a thin adapter over the engine.

Evaluations are ordinary pytest items run in the call phase; pytest resolves their fixtures;
``dotevals._engine.evaluate`` runs the rows. Function-scoped fixtures live for a whole
evaluation, not for each row.
"""

from __future__ import annotations

import pytest

from dotevals import cache
from dotevals.decorators import RUNNER_ATTR
from dotevals.pytest_plugin._asyncio_defaults import apply_defaults
from dotevals.pytest_plugin._item import STATE_KEY, SessionState, run_item
from dotevals.pytest_plugin._options import add_options
from dotevals.pytest_plugin._summary import render_summary
from dotevals.pytest_plugin._xdist import XdistHooks, send_reports, worker_experiment

__all__: list[str] = []

pytest_plugins = ["dotevals.providers._pytest"]


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    apply_defaults(config)
    config.stash[STATE_KEY] = SessionState.from_config(config, worker_experiment(config))
    setattr(config, RUNNER_ATTR, run_item)
    if config.pluginmanager.has_plugin("xdist"):
        config.pluginmanager.register(XdistHooks(), "dotevals-xdist")
    if config.getoption("cache"):
        cache.configure(config.getoption("cache"))


def pytest_unconfigure(config: pytest.Config) -> None:
    if config.getoption("cache"):
        cache.configure(None)


def pytest_sessionfinish(session: pytest.Session) -> None:
    send_reports(session.config)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    state = terminalreporter.config.stash.get(STATE_KEY, None)
    if state is None or not state.reports:
        return
    text = render_summary(state.reports, terminalreporter._tw.fullwidth, terminalreporter.hasmarkup)
    terminalreporter.write(text)
    if cache.active() is not None:
        counts = cache.stats()
        terminalreporter.write_line(
            f"response cache {counts['path']}: {counts['hits']} hits, {counts['misses']} misses"
        )
