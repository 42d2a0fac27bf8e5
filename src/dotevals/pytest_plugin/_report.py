"""``--dotevals-report PATH`` (ini ``dotevals_report``): the session's HTML report at the end."""

from __future__ import annotations

from pathlib import Path

import pytest

from dotevals.errors import DotevalsError
from dotevals.pytest_plugin._state import STATE_KEY
from dotevals.report import session_report

__all__ = ["ReportHooks"]


def _report_path(config: pytest.Config, report: str) -> Path:
    """``--dotevals-report`` from the current folder, the ini value from the ini file's."""
    if config.getoption("dotevals_report", None):
        return Path(config.invocation_params.dir, report)
    return Path(config.inipath.parent if config.inipath else config.rootpath, report)


class ReportHooks:
    """Writes the report of the experiments a session ran (the controller, under xdist).

    The results are stored already: a report that cannot be written is a line in the
    terminal summary, not a failed session.
    """

    def __init__(self) -> None:
        self.message: str | None = None

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        config = session.config
        state = config.stash.get(STATE_KEY, None)
        if state is None or not state.settings.report or not state.reports:
            return
        if hasattr(config, "workerinput"):
            return  # the controller writes the report of every worker's evaluations
        path = _report_path(config, state.settings.report)
        try:
            runs = [(r.experiment, r.storage_url) for r in state.reports]
            written = session_report(path, runs, state.prices)
        except (DotevalsError, OSError) as exc:
            self.message = f"dotevals report not written to {path}: {exc}"
        else:
            self.message = "dotevals report: " + ", ".join(str(p) for p in written)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.message is not None:
            terminalreporter.write_line(self.message)
