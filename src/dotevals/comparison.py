"""Paired comparison of two stored evaluations: ``dotevals.compare(a, b)``.

Rows are aligned by item id; items whose dataset rows differ between the two sides stop the
comparison (naming them), items that errored on either side are left out and counted. Each
score both sides have is compared with :func:`dotevals.stats.paired_difference` (B minus A).
"""

from __future__ import annotations

import json
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from dotevals.errors import ConfigurationError
from dotevals.stats import DEFAULT_LEVEL, PairedDifference, format_interval, paired_difference
from dotevals.storage import Storage, StoredEvaluation, open_storage

if TYPE_CHECKING:  # the engine loads only when an evaluation runs
    from dotevals.api import Results

__all__ = [
    "Comparison",
    "ScoreComparison",
    "base_name",
    "compare",
    "compare_loaded",
    "compare_stored",
    "format_comparison",
    "format_score",
    "regressions",
]

#: How many differing item ids an error names.
_NAMED: Final = 5


@dataclass(frozen=True)
class ScoreComparison:
    """One score of one pair of evaluations: B minus A on the items both completed."""

    evaluation_a: str
    evaluation_b: str
    score: str
    result: PairedDifference
    left_out: int = 0
    cluster: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Strict JSON (no NaN)."""
        return {
            "evaluation_a": self.evaluation_a,
            "evaluation_b": self.evaluation_b,
            "score": self.score,
            "left_out": self.left_out,
            "cluster": self.cluster,
            **self.result.to_dict(),
        }


@dataclass(frozen=True)
class Comparison:
    """What :func:`compare` found: one entry per score of each pair of evaluations."""

    experiment_a: str
    experiment_b: str
    scores: list[ScoreComparison] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Strict JSON (no NaN)."""
        return {
            "experiment_a": self.experiment_a,
            "experiment_b": self.experiment_b,
            "comparisons": [s.to_dict() for s in self.scores],
        }


@dataclass(frozen=True)
class _Item:
    row: Any
    #: :attr:`~dotevals.results.Record.row_hash`: equal rows, equal digests.
    digest: str
    scores: dict[str, float | bool]


def _items(stored: StoredEvaluation) -> tuple[dict[int, _Item], set[int]]:
    """The one adapter to the stored schema: numeric scores of completed items, and the ids
    of errored ones."""
    items: dict[int, _Item] = {}
    errored: set[int] = set()
    for item_id, record in stored.records.items():
        if record.is_error:
            errored.add(item_id)
            continue
        values = {s.name: s.value for s in record.scores if isinstance(s.value, (bool, int, float))}
        items[item_id] = _Item(record.dataset_row, record.row_hash, values)
    return items, errored


def compare(
    a: str | Results,
    b: str | Results,
    evaluation: str | None = None,
    storage: str | Storage | None = None,
    level: float = DEFAULT_LEVEL,
    cluster: str | None = None,
) -> Comparison:
    """Compare B with A item by item: experiment names, or what :func:`dotevals.run` returned.

    Args:
        a: the baseline: an experiment name, or Results (its experiment and evaluation).
        b: the other side, likewise.
        evaluation: compare only this evaluation (its name, or its name before ``[``).
        storage: where named experiments are stored (``json://.dotevals`` by default).
        level: the confidence level of the intervals.
        cluster: a dataset column whose equal values form clusters (cluster-robust figures).

    Raises:
        ConfigurationError: a missing experiment or evaluation, datasets that differ, or no
            items in common; the message says which.
    """
    exp_a, eval_a, store = _side(a, storage)
    exp_b, eval_b, store_b = _side(b, storage if isinstance(a, str) else store)
    pairs = _pairs(store, exp_a, exp_b, evaluation or eval_a or eval_b, store_b)
    out = []
    for name_a, name_b in pairs:
        out += compare_stored((store, exp_a, name_a), (store_b, exp_b, name_b), level, cluster)
    return Comparison(exp_a, exp_b, out)


def compare_stored(
    a: tuple[Storage, str, str],
    b: tuple[Storage, str, str],
    level: float = DEFAULT_LEVEL,
    cluster: str | None = None,
) -> list[ScoreComparison]:
    """Compare two stored evaluations, each ``(storage, experiment, evaluation)``.

    Raises:
        ConfigurationError: the datasets differ or share no completed item.
    """
    return compare_loaded(
        (a[1], a[2], a[0].load(a[1], a[2])), (b[1], b[2], b[0].load(b[1], b[2])), level, cluster
    )


def compare_loaded(
    a: tuple[str, str, StoredEvaluation],
    b: tuple[str, str, StoredEvaluation],
    level: float = DEFAULT_LEVEL,
    cluster: str | None = None,
) -> list[ScoreComparison]:
    """:func:`compare_stored` of evaluations already read, each ``(experiment, evaluation,
    stored)``.

    Raises:
        ConfigurationError: the datasets differ or share no completed item.
    """
    where = (f"{a[0]}/{a[1]}", f"{b[0]}/{b[1]}")
    return _compare_pair(a[2], b[2], where, (a[1], b[1]), level, cluster)


def _side(side: str | Results, storage: str | Storage | None) -> tuple[str, str | None, Storage]:
    if not isinstance(side, str):
        return side.report.experiment, side.report.evaluation, side.storage
    store = open_storage(storage)
    if not store.has_experiment(side):
        raise ConfigurationError(
            f"no experiment {side!r} in {store.url}; stored: {store.list_experiments()}"
        )
    return side, None, store


def base_name(evaluation: str) -> str:
    """An evaluation's name without its parametrization: ``eval_x[local:m]`` -> ``eval_x``."""
    return evaluation.split("[", 1)[0]


def _pairs(
    store: Storage, exp_a: str, exp_b: str, evaluation: str | None, store_b: Storage
) -> list[tuple[str, str]]:
    """Which evaluation of A goes with which of B: equal names, else equal base names when
    each side has one (two variants in one experiment compare with each other)."""
    names_a, names_b = store.list_evaluations(exp_a), store_b.list_evaluations(exp_b)
    if evaluation is not None:
        names_a = [n for n in names_a if evaluation in (n, base_name(n))]
        names_b = [n for n in names_b if evaluation in (n, base_name(n))]
    same = exp_a == exp_b and store is store_b
    pairs = [] if same else [(n, n) for n in names_a if n in names_b]
    paired = {n for pair in pairs for n in pair}
    for base in dict.fromkeys(base_name(n) for n in names_a):
        left = [n for n in names_a if base_name(n) == base and n not in paired]
        right = [n for n in names_b if base_name(n) == base and n not in paired]
        if same and len(left) == 2:
            pairs.append((left[0], left[1]))
        elif not same and len(left) == 1 and len(right) == 1:
            pairs.append((left[0], right[0]))
    if not pairs:
        wanted = f" named {evaluation!r}" if evaluation else ""
        raise ConfigurationError(
            f"no evaluation{wanted} to pair between {exp_a!r} ({names_a}) and {exp_b!r} "
            f"({names_b}); name one with --evaluation"
        )
    return pairs


def _compare_pair(
    stored_a: StoredEvaluation,
    stored_b: StoredEvaluation,
    where: tuple[str, str],
    names: tuple[str, str],
    level: float,
    cluster: str | None,
) -> list[ScoreComparison]:
    items_a, errored_a = _items(stored_a)
    items_b, errored_b = _items(stored_b)
    _check_rows(items_a, items_b, where)
    common = sorted(set(items_a) & set(items_b))
    if not common:
        raise ConfigurationError(
            f"{where[0]} and {where[1]} have no completed items in common "
            f"({len(items_a)} and {len(items_b)} completed): run both on the same dataset"
        )
    left_out = len((set(items_a) | set(items_b) | errored_a | errored_b) - set(common))
    columns = stored_a.header.columns if stored_a.header is not None else []
    cluster = cluster or _stored_cluster(stored_a, stored_b)
    repeats = _stored_repeats(stored_a, stored_b)
    out = []
    both = (s for i in common for s in items_a[i].scores if s in items_b[i].scores)
    for score in dict.fromkeys(both):
        ids = [i for i in common if score in items_a[i].scores and score in items_b[i].scores]
        labels: list[Hashable] | None = None
        if cluster is not None:
            labels = [_label(items_a[i].row, columns, cluster, i) for i in ids]
        elif repeats > 1:  # each row's repeats form a cluster (item id row * K + repeat)
            labels = [i // repeats for i in ids]
        result = paired_difference(
            [items_a[i].scores[score] for i in ids],
            [items_b[i].scores[score] for i in ids],
            level,
            labels,
        )
        out.append(
            ScoreComparison(*names, score, result, left_out + len(common) - len(ids), cluster)
        )
    return out


def _stored_cluster(a: StoredEvaluation, b: StoredEvaluation) -> str | None:
    """The cluster column both evaluations were run with (``@foreach(cluster=...)``), or None."""
    found = {None if s.header is None else s.header.cluster for s in (a, b)}
    return found.pop() if len(found) == 1 else None


def _stored_repeats(a: StoredEvaluation, b: StoredEvaluation) -> int:
    """The ``repeats`` both evaluations were run with (1 when they differ or are unknown)."""
    found = {None if s.header is None else s.header.options.get("repeats") for s in (a, b)}
    k = found.pop() if len(found) == 1 else None
    return k if isinstance(k, int) and k > 1 else 1


def _check_rows(
    items_a: dict[int, _Item], items_b: dict[int, _Item], where: tuple[str, str]
) -> None:
    differ = [
        i for i in sorted(set(items_a) & set(items_b)) if items_a[i].digest != items_b[i].digest
    ]
    if differ:
        named = ", ".join(str(i) for i in differ[:_NAMED])
        more = f" and {len(differ) - _NAMED} more" if len(differ) > _NAMED else ""
        raise ConfigurationError(
            f"{where[0]} and {where[1]} hold different dataset rows for items {named}{more}: "
            "a paired comparison needs both run on the same dataset"
        )


def _canonical(row: Any) -> str:
    return json.dumps(row, sort_keys=True, default=repr)


def _label(row: Any, columns: list[str], cluster: str, item_id: int) -> Hashable:
    """The value of the cluster column in a row (a mapping, or a sequence named by columns)."""
    if isinstance(row, dict) and cluster in row:
        return _canonical(row[cluster])
    if cluster in columns and isinstance(row, list):
        index = columns.index(cluster)
        if index < len(row):
            return _canonical(row[index])
    have = list(row) if isinstance(row, dict) else columns
    raise ConfigurationError(
        f"item {item_id} has no cluster column {cluster!r} (its columns: {have}): "
        "name a column every row has"
    )


def regressions(
    storage: Storage, baseline: str, experiment: str, evaluation: str, alpha: float = 0.05
) -> list[str]:
    """The scores of ``experiment``'s evaluation significantly below ``baseline``'s.

    A one-sided paired test at ``alpha``: a score drops when the upper bound of the
    ``1 - 2 alpha`` interval of its difference is below 0. An evaluation the baseline does not
    have (by name, or by name before ``[`` when it has one such) is not gated.

    Raises:
        ConfigurationError: the datasets differ or share no completed item.
    """
    names = storage.list_evaluations(baseline)
    same_base = [n for n in names if base_name(n) == base_name(evaluation)]
    match = evaluation if evaluation in names else same_base[0] if len(same_base) == 1 else None
    if match is None:
        return []
    sides = (storage, baseline, match), (storage, experiment, evaluation)
    found = compare_stored(*sides, 1 - 2 * alpha)
    return [
        f"{s.score} is significantly below baseline {baseline!r} (one-sided alpha {alpha:g}): "
        f"B - A {s.result.diff}"
        for s in found
        if s.result.diff.hi is not None and s.result.diff.hi < 0
    ]


def format_comparison(comparison: Comparison) -> str:
    """The comparison as text, one block per score."""
    head = f"A = {comparison.experiment_a}, B = {comparison.experiment_b}: differences are B - A"
    return "\n\n".join([head, *(format_score(s) for s in comparison.scores)])


def format_score(item: ScoreComparison) -> str:
    """One score's comparison: the means, B - A with its interval, the test, what it could see."""
    r = item.result
    names = item.evaluation_a
    if item.evaluation_b != item.evaluation_a:
        names = f"{item.evaluation_a} vs {item.evaluation_b}"
    left = (
        f", {item.left_out} items left out (errored or missing on a side)" if item.left_out else ""
    )
    lines = [
        f"{names} · {item.score}: {r.n} paired items{left}",
        f"  A {r.mean_a:.3f}   B {r.mean_b:.3f}",
        f"  B - A {format_interval(r.diff, 3)}",
    ]
    p = "n/a" if r.p_value is None else f"{r.p_value:.4g}"
    test = f"  {r.test} p={p}"
    if r.a_only is not None and r.b_only is not None:
        test += f"; discordant: A only {r.a_only}, B only {r.b_only}"
    corr = "n/a" if r.correlation is None else f"{r.correlation:.2f}"
    lines.append(f"{test}; per-item correlation {corr}")
    if r.detectable is not None:
        lines.append(f"  smallest difference this could detect (80% power): {r.detectable:.3f}")
    return "\n".join(lines)
