"""The report's view model: stored evaluations turned into plain data by one adapter.

:func:`build_view` is the only code of the report that reads a store or computes a figure;
the HTML is rendered from what it returns. An evaluation run for several models
(``pytest --model local:a --model local:b`` stores ``eval_x[local:a]`` and
``eval_x[local:b]``) or stored under several experiments becomes one evaluation with one
column per model, rows aligned by item id.

The report computes no statistic of its own: each metric's figure is the one ``dotevals show``
gives (:func:`dotevals.figures.evaluation_figures`, intervals from :mod:`dotevals.stats`) and
each paired difference the one ``dotevals compare`` gives
(:func:`dotevals.comparison.compare_loaded`).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from dotevals import _meta
from dotevals.comparison import ScoreComparison, compare_loaded
from dotevals.errors import ConfigurationError
from dotevals.figures import evaluation_figures
from dotevals.pricing import Prices
from dotevals.results import Header, IntervalValue, MetricValue, Record, Summary
from dotevals.stats import DEFAULT_LEVEL, Interval
from dotevals.storage import Storage, StoredEvaluation

__all__ = [
    "DifferenceView",
    "EvaluationView",
    "MetricView",
    "ReportView",
    "RunFacts",
    "build_view",
]

_PARAM: Final = re.compile(r"^(?P<base>.*?)\[(?P<param>.*)\]$")


@dataclass(frozen=True)
class RunFacts:
    """Where one model's results of an evaluation come from."""

    model: str
    experiment: str
    evaluation: str
    header: Header | None
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
    """One metric of one score: a figure per model (None where a model has none), the one
    ``dotevals show --json`` gives (:func:`dotevals.figures.evaluation_figures`)."""

    score: str
    metric: str
    figures: list[Interval | None]


@dataclass(frozen=True)
class DifferenceView:
    """``other - baseline`` of one score, as ``dotevals compare`` finds it."""

    baseline: str
    other: str
    comparison: ScoreComparison

    @property
    def score(self) -> str:
        """The score compared."""
        return self.comparison.score


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
    header: Header | None = None
    summaries: list[Summary] = field(default_factory=list)
    #: The stored records as they are, for the rows (they may hold fields this version lacks).
    records: dict[int, dict[str, Any]] = field(default_factory=dict)
    typed: dict[int, Record] = field(default_factory=dict)

    def stored(self) -> StoredEvaluation:
        """The run as :meth:`Storage.load` reads it: header, final records, last summary."""
        return StoredEvaluation(
            self.header, self.typed, self.summaries[-1] if self.summaries else None
        )


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
    """One pass over the stored entries: typed header, summaries and records, and the
    records as stored."""
    run = _Run(experiment, evaluation)
    for entry in store.iter_entries(experiment, evaluation):
        kind = entry.get("type", "record")
        if kind == "record":
            item_id = int(entry["item_id"])
            record = _record(entry)
            if record is not None:
                if prices is not None and "cost" not in entry:
                    _price(entry, record, run.header, prices)
                run.typed[item_id] = record
            else:  # shown as stored, left out of the figures
                run.typed.pop(item_id, None)
            run.records[item_id] = entry
        elif kind == "header" and run.header is None:
            run.header = Header.from_dict(entry)
        elif kind == "summary":
            run.summaries.append(Summary.from_dict(entry))
    return run


def _record(entry: dict[str, Any]) -> Record | None:
    """The typed record, or None for one this version cannot read (``load`` skips it too)."""
    try:
        return Record.from_dict(entry)
    except (KeyError, TypeError, ValueError, OverflowError):
        return None


def _price(entry: dict[str, Any], record: Record, header: Header | None, prices: Prices) -> None:
    """Set the entry's ``cost`` from its usage when ``prices`` knows its model."""
    model = record.model or (header.model if header is not None else None)
    cost = prices.cost(model, record.usage)
    if cost is not None:
        entry["cost"] = cost


def _label(run: _Run, several_experiments: bool) -> str:
    param = _split(run.evaluation)[1]
    parts = ([run.experiment] if several_experiments else []) + ([param] if param else [])
    return " ".join(parts) or run.experiment


def _evaluation_view(base: str, runs: list[_Run], several_experiments: bool) -> EvaluationView:
    models = [_label(run, several_experiments) for run in runs]
    figures = [_figures(run) for run in runs]
    keys = list(dict.fromkeys(key for table in figures for key in table))
    metrics = [
        MetricView(score, metric, [table.get((score, metric)) for table in figures])
        for score, metric in keys
    ]
    differences, notes = _differences(runs, models)
    return EvaluationView(
        name=base,
        models=models,
        metrics=metrics,
        differences=differences,
        facts=[_facts(run, model) for run, model in zip(runs, models)],
        rows=_rows(runs),
        warnings=_dataset_warnings(runs, models) + notes,
    )


def _dataset_warnings(runs: list[_Run], models: list[str]) -> list[str]:
    """A warning when the models' runs read datasets with different fingerprints."""
    prints = {
        model: run.header.dataset_fingerprint if run.header is not None else None
        for run, model in zip(runs, models)
    }
    if len(set(prints.values())) < 2:
        return []
    listed = ", ".join(
        f"{model}: {fingerprint or 'unknown'}" for model, fingerprint in prints.items()
    )
    return [f"the models read different datasets ({listed}); rows are aligned by item id only"]


def _figures(run: _Run) -> dict[tuple[str, str], Interval | None]:
    """Each metric's figure with errored rows as failures: what ``dotevals show`` shows."""
    found = evaluation_figures(run.evaluation, run.stored()).metrics
    return {(m.score, m.metric): _interval(m.with_errors) for m in found}


def _interval(value: MetricValue | None) -> Interval | None:
    """A figure as an :class:`~dotevals.stats.Interval`; a summary that names no method
    (a custom metric's figure from an older run) gives its stored bounds."""
    if value is None:
        return None
    if isinstance(value, IntervalValue):
        return value.interval
    low, high = value.ci95
    return Interval(
        value.value,
        low if math.isfinite(low) else None,
        high if math.isfinite(high) else None,
        value.count,
        "stored summary",
        DEFAULT_LEVEL,
        stderr=value.stderr if math.isfinite(value.stderr) else None,
    )


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def _differences(runs: list[_Run], models: list[str]) -> tuple[list[DifferenceView], list[str]]:
    """Each model against the first, score by score, with :func:`dotevals.compare`'s code;
    a pair it cannot compare (different datasets, no completed item in common) is a note."""
    views: list[DifferenceView] = []
    notes: list[str] = []
    first = (runs[0].experiment, runs[0].evaluation, runs[0].stored())
    for run, model in zip(runs[1:], models[1:]):
        try:
            found = compare_loaded(first, (run.experiment, run.evaluation, run.stored()))
        except ConfigurationError as exc:
            notes.append(f"no paired difference of {model} and {models[0]}: {exc}")
            continue
        views += [DifferenceView(models[0], model, comparison) for comparison in found]
    return views, notes


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
        duration=math.fsum(s.duration for s in run.summaries),
        concurrency=[[limit for _, limit in s.concurrency] for s in run.summaries],
        usage=usage,
        cost=math.fsum(costs) if costs else _summary_cost(run),
    )


def _summary_cost(run: _Run) -> float | None:
    """The cost the last summary holds (a run given a price table works it out)."""
    return run.summaries[-1].cost if run.summaries else None


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
