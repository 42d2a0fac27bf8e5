"""Running one evaluation item: pytest resolved the fixtures, the engine does the rest."""

from __future__ import annotations

from typing import Any

import pytest

from dotevals._engine import EvaluationReport, RunOptions, evaluate
from dotevals._progress import RichProgress
from dotevals.decorators import EvaluationSpec
from dotevals.errors import DotevalsError
from dotevals.pytest_plugin._state import STATE_KEY, SessionState
from dotevals.pytest_plugin._thresholds import raise_for_failure
from dotevals.retry import RetryPolicy

__all__ = [
    "add_junit_properties",
    "evaluation_name",
    "model_comparisons",
    "run_item",
    "run_options",
]


def run_options(state: SessionState, evaluation: str) -> RunOptions:
    """Options for one evaluation item."""
    settings = state.settings
    retries = settings.max_retries
    return RunOptions(
        experiment=state.experiment,
        storage=state.storage,
        evaluation=evaluation,
        samples=settings.samples,
        concurrency=settings.concurrency,
        max_concurrency=settings.max_concurrency,
        retry=RetryPolicy() if retries is None else RetryPolicy(max_retries=retries),
        progress=RichProgress(suspend=state.suspend_capture),
        prices=state.prices,
        lock_timeout=settings.lock_timeout,
        runner=state.runner,
    )


def add_junit_properties(item: pytest.Item, report: EvaluationReport) -> None:
    """The evaluation's figures as ``user_properties``, which ``--junitxml`` writes out.

    ``dotevals.experiment``, ``dotevals.rows``, ``dotevals.errors``, and for every metric
    ``dotevals.SCORE.METRIC`` with ``.ci_low``, ``.ci_high`` and ``.n`` beside it.
    """
    properties = item.user_properties
    properties += [
        ("dotevals.experiment", report.experiment),
        ("dotevals.rows", report.total),
        ("dotevals.errors", report.errors),
    ]
    for score, metrics in report.metrics.items():
        for metric, value in metrics.items():
            key = f"dotevals.{score}.{metric}"
            low, high = value.ci95
            properties += [
                (key, value.value),
                (f"{key}.ci_low", low),
                (f"{key}.ci_high", high),
                (f"{key}.n", value.count),
            ]


def _gate(state: SessionState, report: EvaluationReport) -> str | None:
    """Why the evaluation fails the ``--baseline`` gate (its drops), or None."""
    from dotevals.comparison import regressions

    baseline, alpha = state.settings.baseline, state.settings.baseline_alpha
    assert baseline is not None
    drops = regressions(state.storage, baseline, report.experiment, report.evaluation, alpha)
    return f"EvaluationFailed: {report.evaluation}: " + "; ".join(drops) if drops else None


def model_comparisons(state: SessionState) -> str:
    """Each evaluation run with several ``--model``s: every model against the first, paired."""
    from dotevals.comparison import base_name, compare_stored, format_score

    groups: dict[tuple[str, str], list[str]] = {}
    for report in state.reports:
        groups.setdefault((report.experiment, base_name(report.evaluation)), []).append(
            report.evaluation
        )
    blocks = []
    for (experiment, _), names in groups.items():
        first = (state.storage, experiment, names[0])
        for other in dict.fromkeys(names[1:]):
            if other == names[0]:
                continue
            try:
                found = compare_stored(first, (state.storage, experiment, other))
            except DotevalsError as exc:
                blocks.append(f"{names[0]} vs {other}: not compared: {exc}")
                continue
            blocks += [format_score(s) for s in found]
    if not blocks:
        return ""
    return "\n\n".join(["paired comparison (B - A, A the first model)", *blocks]) + "\n"


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
    state = request.config.stash[STATE_KEY]
    options = run_options(state, evaluation_name(request, spec))
    failure: str | None = None
    try:
        report = await evaluate(spec, fixtures, options)
        state.reports.append(report)
        add_junit_properties(request.node, report)
        raise_for_failure(spec, report)
        if state.settings.baseline is not None:
            failure = _gate(state, report)
    except DotevalsError as exc:
        failure = f"{type(exc).__name__}: {exc}"
    if failure is not None:
        pytest.fail(failure, pytrace=False)
