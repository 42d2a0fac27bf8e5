"""pytest-xdist support: one experiment name for all workers, one summary on the controller.

Registered only when xdist is loaded, since its hooks are unknown to pytest otherwise.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import pytest

from dotevals.pytest_plugin._state import STATE_KEY, XDIST_EXPERIMENT

if TYPE_CHECKING:
    from dotevals._engine import EvaluationReport

__all__ = ["XdistHooks", "send_reports"]

_REPORTS = "dotevals_reports"


def _dump(report: EvaluationReport) -> dict[str, Any]:
    return dataclasses.asdict(report)


def _load(data: dict[str, Any]) -> EvaluationReport:
    from dotevals._engine import EvaluationReport
    from dotevals.metrics import IntervalValue
    from dotevals.results import MetricValue

    def metrics(raw: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, MetricValue]]:
        return {s: {m: IntervalValue(**v) for m, v in ms.items()} for s, ms in raw.items()}

    data = dict(data)
    data["metrics"] = metrics(data["metrics"])
    data["metrics_without_errors"] = metrics(data["metrics_without_errors"])
    data["concurrency"] = [tuple(pair) for pair in data["concurrency"]]
    return EvaluationReport(**data)


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
        node.config.stash[STATE_KEY].reports.extend(_load(r) for r in reports)


def send_reports(config: pytest.Config) -> None:
    """On a worker, hand this worker's reports to the controller."""
    workeroutput: dict[str, Any] | None = getattr(config, "workeroutput", None)
    state = config.stash.get(STATE_KEY, None)
    if workeroutput is not None and state is not None:
        workeroutput[_REPORTS] = [_dump(r) for r in state.reports]
