"""pytest-xdist support: one experiment name for all workers, one summary on the controller.

Registered only when xdist is loaded, since its hooks are unknown to pytest otherwise.
"""

from __future__ import annotations

from typing import Any

import pytest

from dotevals.pytest_plugin._state import STATE_KEY, XDIST_EXPERIMENT

__all__ = ["XdistHooks", "send_reports"]

_REPORTS = "dotevals_reports"


class XdistHooks:
    """Hooks that exist only with pytest-xdist."""

    @pytest.hookimpl
    def pytest_configure_node(self, node: Any) -> None:
        """Hand the controller's experiment name to a worker."""
        node.workerinput[XDIST_EXPERIMENT] = node.config.stash[STATE_KEY].experiment

    @pytest.hookimpl
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """Collect a finished worker's evaluation reports for the summary."""
        reports = getattr(node, "workeroutput", {}).get(_REPORTS, [])
        if not reports:
            return
        from dotevals.results import Summary  # not for sessions whose workers ran no evaluation

        node.config.stash[STATE_KEY].reports.extend(Summary.from_dict(r) for r in reports)


def send_reports(config: pytest.Config) -> None:
    """On a worker, hand this worker's reports to the controller."""
    workeroutput: dict[str, Any] | None = getattr(config, "workeroutput", None)
    state = config.stash.get(STATE_KEY, None)
    if workeroutput is not None and state is not None:
        workeroutput[_REPORTS] = [r.to_dict() for r in state.reports]
