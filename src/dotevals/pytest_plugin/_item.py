"""Running one evaluation item: pytest resolved the fixtures, the engine does the rest."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from dotevals._engine import EvaluationReport, RunOptions, evaluate, raise_for_failure
from dotevals._progress import RichProgress
from dotevals.api import new_experiment_name
from dotevals.decorators import EvaluationSpec
from dotevals.errors import DotevalsError
from dotevals.retry import RetryPolicy
from dotevals.storage import Storage, open_storage

__all__ = ["SessionState", "evaluation_name", "run_item"]


@dataclass
class SessionState:
    """What the plugin keeps for a session: options, the store, the reports."""

    config: pytest.Config
    experiment: str
    storage: Storage
    reports: list[EvaluationReport] = field(default_factory=list)

    @classmethod
    def from_config(cls, config: pytest.Config, experiment: str | None = None) -> SessionState:
        """Read the options; bad ones are usage errors naming the fix."""
        try:
            storage = open_storage(config.getoption("storage"))
        except DotevalsError as exc:
            raise pytest.UsageError(f"--storage: {exc}") from exc
        experiment = experiment or config.getoption("experiment") or new_experiment_name()
        try:
            storage.check_experiment(experiment)
        except DotevalsError as exc:
            raise pytest.UsageError(f"--experiment: {exc}") from None
        return cls(config, experiment, storage)

    def suspend_capture(self) -> Any:
        """A context in which output reaches the terminal despite pytest's capture."""
        capman = self.config.pluginmanager.getplugin("capturemanager")
        return capman.global_and_fixture_disabled()

    def run_options(self, evaluation: str) -> RunOptions:
        """Options for one evaluation item."""
        config = self.config
        retries = config.getoption("max_retries")
        return RunOptions(
            experiment=self.experiment,
            storage=self.storage,
            evaluation=evaluation,
            samples=config.getoption("samples"),
            concurrency=config.getoption("concurrency"),
            max_concurrency=config.getoption("max_concurrency"),
            retry=RetryPolicy() if retries is None else RetryPolicy(max_retries=retries),
            progress=RichProgress(suspend=self.suspend_capture),
        )


def evaluation_name(request: pytest.FixtureRequest, spec: EvaluationSpec) -> str:
    """What the item is stored as: ``name=`` when given, with the item's parametrization id.

    ``@foreach(..., name="renamed")`` on an item ``eval_x[a]`` is stored as ``renamed[a]``.
    """
    node_name: str = request.node.name
    given = spec.options.get("name")
    if not given:
        return node_name
    original: str = getattr(request.node, "originalname", node_name)
    suffix = node_name[len(original) :] if node_name.startswith(original) else ""
    return f"{given}{suffix}"


async def run_item(
    request: pytest.FixtureRequest, spec: EvaluationSpec, fixtures: dict[str, Any]
) -> None:
    """Evaluate ``spec`` with the fixture values pytest resolved for this item.

    A DotevalsError fails the item once, with its type and message (``ConfigurationError:
    ...``): ``pytest.fail`` is called outside the ``except`` block, so no "During handling of
    the above exception" repeats it.
    """
    state: SessionState = request.config.stash[STATE_KEY]
    options = state.run_options(evaluation_name(request, spec))
    failure: str | None = None
    try:
        report = await evaluate(spec, fixtures, options)
        state.reports.append(report)
        raise_for_failure(spec, report)
    except DotevalsError as exc:
        failure = f"{type(exc).__name__}: {exc}"
    if failure is not None:
        pytest.fail(failure, pytrace=False)


STATE_KEY = pytest.StashKey[SessionState]()
