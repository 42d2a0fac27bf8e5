"""Dataset rows as the engine reads them: their arguments, identity and digests; pure code.

A row becomes an :class:`Item` (its keyword arguments, or why it has none); rows compare across
runs by their JSON form without what changes between runs (:func:`stable`); a one-shot dataset
read twice is refused (:func:`check_reusable`).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from dotevals.decorators import EvaluationSpec
from dotevals.errors import ConfigurationError

__all__ = [
    "FINGERPRINT_ROWS",
    "Item",
    "check_reusable",
    "cluster_label",
    "fingerprint",
    "jsonable",
    "row_kwargs",
    "stable",
]

#: Rows of the dataset's head that its fingerprint covers.
FINGERPRINT_ROWS: Final = 100


@dataclass
class Item:
    item_id: int
    row: Any
    kwargs: dict[str, Any] | None
    problem: str | None = None
    problem_type: str = "ValueError"
    #: The row's cluster label (the value of the evaluation's cluster column, as text).
    cluster: str | None = None
    #: Which run of the row this is, with ``repeats=K`` (0 to K - 1); None without repeats.
    repeat: int | None = None


def row_kwargs(columns: Sequence[str], row: Any) -> tuple[dict[str, Any] | None, str | None]:
    """The keyword arguments a row gives the function, or why it cannot."""
    if isinstance(row, dict):
        missing = [c for c in columns if c not in row]
        if missing:
            return None, f"row has no key(s) {missing}; its keys are {sorted(map(str, row))}"
        return {c: row[c] for c in columns}, None
    if isinstance(row, (tuple, list)):
        if len(row) != len(columns):
            return None, (
                f"row has {len(row)} field(s) but columns {list(columns)} need {len(columns)}"
            )
        return dict(zip(columns, row)), None
    if len(columns) == 1:
        return {columns[0]: row}, None
    return None, f"row {row!r} is not a tuple, list or dict for columns {list(columns)}"


def cluster_label(column: str, columns: Sequence[str], row: Any) -> tuple[str | None, str | None]:
    """The label of a row's cluster: the value of ``column`` (a key of a dict row, or one of
    the columns), as its JSON text; or why the row has none."""
    if isinstance(row, dict):
        if column in row:
            return _label_text(row[column]), None
        return None, f"row has no cluster column {column!r}; its keys are {sorted(map(str, row))}"
    if column in columns:
        kwargs, _ = row_kwargs(columns, row)
        if kwargs is not None:
            return _label_text(kwargs[column]), None
    return None, (
        f"row {row!r} has no cluster column {column!r}: give dict rows with that key, "
        f"or make it one of the columns {list(columns)}"
    )


_LABEL_ENCODER: Final = json.JSONEncoder(sort_keys=True, default=repr, ensure_ascii=False)


def _label_text(value: Any) -> str:
    return value if isinstance(value, str) else _LABEL_ENCODER.encode(value)


def jsonable(value: Any) -> Any:
    """``value`` as JSON gives it back (tuples become lists, other values their repr)."""
    return json.loads(json.dumps(value, default=repr))


#: The memory address in a default repr (``<Img object at 0x7f...>``): different every run.
_ADDRESS: Final = re.compile(r" at 0x[0-9a-fA-F]+")


def stable(value: Any) -> Any:
    """A JSON value (from :func:`jsonable` or the store) without what changes between runs.

    Values JSON cannot hold are stored as their repr; memory addresses in reprs are left out,
    and NaN (which equals nothing) is compared as the text ``"NaN"``.
    """
    if isinstance(value, str):
        return _ADDRESS.sub("", value) if " at 0x" in value else value
    if isinstance(value, float) and value != value:
        return "NaN"
    if isinstance(value, list):
        return [stable(v) for v in value]
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items()}
    return value


def fingerprint(columns: Sequence[str], head: list[Any]) -> str:
    blob = json.dumps([list(columns), stable(jsonable(head))], sort_keys=True).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()[:16]


#: One-shot datasets some run has opened, held weakly (an evaluation's spec also remembers).
_READ_ITERATORS: weakref.WeakSet[Any] = weakref.WeakSet()


def check_reusable(name: str, spec: EvaluationSpec) -> None:
    """Refuse a one-shot dataset that an earlier run already read, or that arrives exhausted.

    Parametrized items and repeated runs of an evaluation share its spec, which records that
    its iterator was opened; two evaluations decorated with one generator are caught by a
    weak set of opened iterators (which keeps none of them alive).

    Raises:
        ConfigurationError: a second run (a parametrized item, another ``dotevals.run``)
            would read no rows of it and pass on nothing.
    """
    dataset = spec.dataset
    if not isinstance(dataset, Iterator):  # iter() of it is itself: reading it consumes it
        return
    opened_before, spec.dataset_opened = spec.dataset_opened, True
    try:  # generators and files: seen by any evaluation; weak, so nothing is kept alive
        read_elsewhere = dataset in _READ_ITERATORS
        _READ_ITERATORS.add(dataset)
    except TypeError:  # not weakly referenceable (list iterators, map objects): the flag only
        read_elsewhere = False
    if opened_before:
        why = "is a one-shot iterator (a generator?) that an earlier run already read"
    elif read_elsewhere:
        why = "is a one-shot iterator (a generator?) that another evaluation already read"
    elif inspect.isgenerator(dataset) and inspect.getgeneratorstate(dataset) == "GEN_CLOSED":
        why = "is an exhausted generator"
    else:
        return
    raise ConfigurationError(
        f"the dataset of {name!r} {why}, so this run would evaluate no rows. A dataset used "
        "more than once (parametrized evaluations, several runs) must be re-iterable: a list "
        "or tuple, a dotevals.datasets.Dataset, or any object whose __iter__ returns a fresh "
        "iterator each time (e.g. a class whose __iter__ calls your generator function)."
    )
