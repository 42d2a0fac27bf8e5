"""The report's view model: stored evaluations turned into plain data by one adapter.

:func:`build_view` is the only code of the report that reads a store or computes a figure;
the HTML is rendered from what it returns. An evaluation run for several models
(``pytest --model local:a --model local:b`` stores ``eval_x[local:a]`` and
``eval_x[local:b]``) or stored under several experiments becomes one evaluation with one
column per model, rows aligned by item id.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from dotevals import _meta
from dotevals.errors import ConfigurationError
from dotevals.pricing import Prices
from dotevals.report._stats import (
    Difference,
    Interval,
    mean_interval,
    paired_difference,
    wilson_interval,
)
from dotevals.results import MetricValue, Usage
from dotevals.storage import Storage

__all__ = [
    "DifferenceView",
    "EvaluationView",
    "MetricView",
    "ReportView",
    "RunFacts",
    "build_view",
]

#: Metrics computed from the records; others come from the last stored summary.
_COMPUTED: Final = ("accuracy", "mean")
_PARAM: Final = re.compile(r"^(?P<base>.*?)\[(?P<param>.*)\]$")


@dataclass(frozen=True)
class RunFacts:
    """Where one model's results of an evaluation come from."""

    model: str
    experiment: str
    evaluation: str
    header: dict[str, Any]
    runs: int
    rows: int
    errors: int
    retries: int
    duration: float
    concurrency: list[list[int]]
    usage: dict[str, float]
    cost: float | None


@dataclass(frozen=True)
class MetricView:
    """One metric of one score: a figure per model (None where a model has none)."""

    score: str
    metric: str
    figures: list[Interval | None]


@dataclass(frozen=True)
class DifferenceView:
    """``other - baseline`` of one metric over the items both models have."""

    score: str
    metric: str
    baseline: str
    other: str
    difference: Difference


@dataclass(frozen=True)
class EvaluationView:
    """One evaluation: its models, figures, run facts and rows (JSON-ready dicts)."""

    name: str
    models: list[str]
    metrics: list[MetricView]
    differences: list[DifferenceView]
    facts: list[RunFacts]
    rows: list[dict[str, Any]] = field(repr=False)
    #: What a reader should know before comparing the models (datasets that differ).
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ReportView:
    """Everything a report shows."""

    experiments: list[str]
    storage: str
    generated_at: float
    dotevals_version: str
    evaluations: list[EvaluationView]


@dataclass
class _Run:
    experiment: str
    evaluation: str
    header: dict[str, Any]
    summaries: list[dict[str, Any]]
    records: dict[int, dict[str, Any]]


def build_view(
    store: Storage,
    experiments: Sequence[str],
    evaluation: str | None = None,
    prices: Prices | None = None,
) -> ReportView:
    """Read ``experiments`` from ``store`` into a :class:`ReportView`.

    ``evaluation`` keeps one evaluation: its full name (``eval_x[local:a]``) or its name
    without parameters (``eval_x``, every model). ``prices`` gives each record with token
    usage its cost (by the record's model, else the evaluation's).

    Raises:
        ConfigurationError: an experiment is missing, or no evaluation is called ``evaluation``.
    """
    experiments = list(dict.fromkeys(experiments))  # each once, in the order given
    names = _evaluation_names(store, experiments, evaluation)
    groups: dict[str, list[tuple[str, str]]] = {}
    for experiment, name in names:
        groups.setdefault(_split(name)[0], []).append((experiment, name))
    views = [
        _evaluation_view(
            base, [_load(store, e, n, prices) for e, n in members], len(experiments) > 1
        )
        for base, members in groups.items()
    ]
    return ReportView(list(experiments), store.url, time.time(), _meta.version(), views)


def _evaluation_names(
    store: Storage, experiments: Sequence[str], evaluation: str | None
) -> list[tuple[str, str]]:
    known = store.list_experiments()
    missing = [e for e in experiments if e not in known]
    if missing:
        raise ConfigurationError(
            f"no experiment {missing[0]!r} in {store.url}; available: {', '.join(known) or 'none'}"
        )
    found = [(e, n) for e in experiments for n in store.list_evaluations(e)]
    if evaluation is None:
        return found
    kept = [(e, n) for e, n in found if evaluation in (n, _split(n)[0])]
    if not kept:
        available = ", ".join(sorted({n for _, n in found})) or "none"
        raise ConfigurationError(
            f"no evaluation {evaluation!r} in {', '.join(experiments)}; available: {available}"
        )
    return kept


def _split(name: str) -> tuple[str, str | None]:
    """``eval_x[local:a]`` -> (``eval_x``, ``local:a``); a name without brackets has no param."""
    match = _PARAM.match(name)
    return (match["base"], match["param"]) if match else (name, None)


def _load(store: Storage, experiment: str, evaluation: str, prices: Prices | None) -> _Run:
    run = _Run(experiment, evaluation, {}, [], {})
    for entry in store.iter_entries(experiment, evaluation):
        kind = entry.get("type", "record")
        if kind == "record":
            if prices is not None and "cost" not in entry:
                _price(entry, run.header, prices)
            run.records[int(entry["item_id"])] = entry
        elif kind == "header" and not run.header:
            run.header = entry
        elif kind == "summary":
            run.summaries.append(entry)
    return run


def _price(record: dict[str, Any], header: dict[str, Any], prices: Prices) -> None:
    """Set the record's ``cost`` from its usage when ``prices`` knows its model."""
    model = record.get("model") or header.get("model")
    usage = Usage.from_dict(record.get("usage"))
    cost = prices.cost(model if isinstance(model, str) else None, usage)
    if cost is not None:
        record["cost"] = cost


def _label(run: _Run, several_experiments: bool) -> str:
    param = _split(run.evaluation)[1]
    parts = ([run.experiment] if several_experiments else []) + ([param] if param else [])
    return " ".join(parts) or run.experiment


def _evaluation_view(base: str, runs: list[_Run], several_experiments: bool) -> EvaluationView:
    models = [_label(run, several_experiments) for run in runs]
    metrics = [
        MetricView(score, metric, [_figure(run, score, metric) for run in runs])
        for score, metric in _score_metrics(runs)
    ]
    return EvaluationView(
        name=base,
        models=models,
        metrics=metrics,
        differences=_differences(runs, models, metrics),
        facts=[_facts(run, model) for run, model in zip(runs, models)],
        rows=_rows(runs),
        warnings=_dataset_warnings(runs, models),
    )


def _dataset_warnings(runs: list[_Run], models: list[str]) -> list[str]:
    """A warning when the models' runs read datasets with different fingerprints."""
    prints = {model: run.header.get("dataset_fingerprint") for run, model in zip(runs, models)}
    if len(set(prints.values())) < 2:
        return []
    listed = ", ".join(
        f"{model}: {fingerprint or 'unknown'}" for model, fingerprint in prints.items()
    )
    return [f"the models read different datasets ({listed}); rows are aligned by item id only"]


def _score_metrics(runs: Iterable[_Run]) -> list[tuple[str, str]]:
    """Every (score, metric) named by a stored score, in the order first seen."""
    seen: dict[tuple[str, str], None] = {}
    for run in runs:
        for record in run.records.values():
            for score in record.get("scores") or []:
                for metric in score.get("metrics") or []:
                    seen.setdefault((score["name"], metric), None)
    return list(seen)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def _score_values(run: _Run, score: str) -> dict[int, float]:
    """Each item's value of ``score``; an errored row counts as 0 (a failure)."""
    values: dict[int, float] = {}
    for item_id, record in run.records.items():
        if record.get("error") is not None:
            values[item_id] = 0.0
            continue
        for stored in record.get("scores") or []:
            number = _number(stored.get("value")) if stored.get("name") == score else None
            if number is not None:
                values[item_id] = number
    return values


def _figure(run: _Run, score: str, metric: str) -> Interval | None:
    if metric in _COMPUTED:
        values = list(_score_values(run, score).values())
        if not values:
            return None
        if metric == "accuracy":
            return wilson_interval(math.fsum(values), len(values))
        return mean_interval(values)
    return _stored_figure(run, score, metric)


def _stored_figure(run: _Run, score: str, metric: str) -> Interval | None:
    """A custom metric's figure from the last stored summary (its code may be gone)."""
    if not run.summaries:
        return None
    stored = (run.summaries[-1].get("metrics") or {}).get(score) or {}
    value = MetricValue.from_dict(stored.get(metric))
    if value is None:
        return None
    low, high = value.ci95
    return Interval(value.value, low, high, value.count, "stored summary")


def _differences(
    runs: list[_Run], models: list[str], metrics: list[MetricView]
) -> list[DifferenceView]:
    """Each model against the first, for every computed metric, over their common items."""
    views = []
    for m in (m for m in metrics if m.metric in _COMPUTED):
        base = _score_values(runs[0], m.score)
        for run, model in zip(runs[1:], models[1:]):
            other = _score_values(run, m.score)
            common = sorted(base.keys() & other.keys())
            difference = paired_difference([base[i] for i in common], [other[i] for i in common])
            if m.metric == "accuracy":
                difference = _clipped(difference)
            views.append(DifferenceView(m.score, m.metric, models[0], model, difference))
    return views


def _clipped(difference: Difference) -> Difference:
    """A difference of two proportions, its interval kept within [-1, 1]."""
    iv = difference.interval
    kept = Interval(iv.value, max(-1.0, iv.low), min(1.0, iv.high), iv.n, iv.method)
    return Difference(kept, difference.p_value)


def _facts(run: _Run, model: str) -> RunFacts:
    records = run.records.values()
    usage: dict[str, float] = {}
    costs: list[float] = []
    for record in records:
        for key, value in (record.get("usage") or {}).items():
            number = _number(value)
            if number is not None:
                usage[key] = usage.get(key, 0.0) + number
        cost = _number(record.get("cost"))
        if cost is not None:
            costs.append(cost)
    return RunFacts(
        model=model,
        experiment=run.experiment,
        evaluation=run.evaluation,
        header=run.header,
        runs=len(run.summaries),
        rows=len(run.records),
        errors=sum(1 for r in records if r.get("error") is not None),
        retries=sum(max(0, int(_number(r.get("attempts")) or 1) - 1) for r in records),
        duration=math.fsum(_number(s.get("duration")) or 0.0 for s in run.summaries),
        concurrency=[_limits(s.get("concurrency")) for s in run.summaries],
        usage=usage,
        cost=math.fsum(costs) if costs else _summary_cost(run),
    )


def _summary_cost(run: _Run) -> float | None:
    """The cost the last summary holds (a run given a price table works it out)."""
    return _number(run.summaries[-1].get("cost")) if run.summaries else None


def _limits(history: Any) -> list[int]:
    """The concurrency limits of one run's ``[[seconds, limit], ...]`` history."""
    if not isinstance(history, list):
        return []
    return [int(p[1]) for p in history if isinstance(p, list) and len(p) == 2]


def text(value: Any) -> str:
    """Any stored value as text: strings as they are, other values as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=repr)


def _verdict(record: dict[str, Any]) -> int | None:
    """1 right, 0 wrong (a score False or 0), -1 errored, None when no score gives a verdict."""
    if record.get("error") is not None:
        return -1
    verdicts = [
        number != 0
        for score in record.get("scores") or []
        if (number := _number(score.get("value"))) is not None
    ]
    if not verdicts:
        return None
    return 1 if all(verdicts) else 0


def _cell(record: dict[str, Any]) -> dict[str, Any]:
    """One model's answer to one row, with short keys: the report holds many of them.

    ``r`` (response), ``s`` (scores), ``k`` (verdict) and ``a`` (attempts) are always there;
    ``e`` (error), ``tb``, ``md`` (metadata), ``t`` (seconds), ``u`` (usage) and ``$`` (cost)
    only when they have a value.
    """
    error = record.get("error")
    scores = record.get("scores") or []
    optional = {
        "e": f"{error.get('type')}: {error.get('message', '')}" if error else None,
        "tb": text(error.get("traceback")) if error else None,
        "md": text({s.get("name"): s.get("metadata") for s in scores if s.get("metadata")} or None),
        "t": _number(record.get("duration")),
        "u": text(record.get("usage")),
        "$": _number(record.get("cost")),
    }
    return {
        "r": text(record.get("model_response")),
        "s": [[text(s.get("name")), text(s.get("value"))] for s in scores],
        "k": _verdict(record),
        "a": int(_number(record.get("attempts")) or 1),
        **{key: value for key, value in optional.items() if value not in (None, "")},
    }


def _rows(runs: list[_Run]) -> list[dict[str, Any]]:
    """Rows by item id, one cell per model (None where a model has no record of the item)."""
    ids = sorted(set().union(*(run.records for run in runs)))
    rows = []
    for item_id in ids:
        records = [run.records.get(item_id) for run in runs]
        first = next(r for r in records if r is not None)
        cells = [None if r is None else _cell(r) for r in records]
        answers = {(c["k"], *map(tuple, c["s"])) for c in cells if c is not None}
        rows.append(
            {
                "i": item_id,
                "p": text(first.get("prompt")) or text(first.get("dataset_row")),
                "d": text(first.get("dataset_row")),
                "x": len(answers) > 1,
                "c": cells,
            }
        )
    return rows
